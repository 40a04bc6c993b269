/* libFuzzer target: .npy loading of arbitrary bytes, through a reader (copying) and a
 * memory-mapped file. Both must agree; anything that loads must save and reload unchanged. */
#include "fuzz_io_common.h"

static mlx_stream cpu;

int LLVMFuzzerInitialize(int* argc, char*** argv) {
  fuzz_setup(".npy");
  cpu = mlx_default_cpu_stream_new();
  return 0;
}

static int load_reader(const void* data, size_t size, mlx_array* a) {
  memstream in = memstream_over(data, size);
  mlx_io_reader r = mlx_io_reader_new(&in, memstream_vtable());
  int status = mlx_load_reader(a, r, cpu);
  mlx_io_reader_free(r);
  return status;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mlx_array from_reader = mlx_array_new(), from_file = mlx_array_new(), again = mlx_array_new();
  int reader_status = load_reader(data, size, &from_reader);
  fuzz_write_input(data, size);
  int file_status = mlx_load(&from_file, fuzz_path, cpu);
  if ((reader_status == 0) != (file_status == 0)) abort();
  if (file_status == 0) {
    fuzz_check_same(from_reader, from_file);
    memstream out = {0};
    mlx_io_writer w = mlx_io_writer_new(&out, memstream_vtable());
    if (mlx_save_writer(w, from_file)) abort();
    mlx_io_writer_free(w);
    if (load_reader(out.data, out.size, &again)) abort();
    fuzz_check_same(from_file, again);
    free(out.data);
  }
  mlx_array_free(from_reader);
  mlx_array_free(from_file);
  mlx_array_free(again);
  return 0;
}
