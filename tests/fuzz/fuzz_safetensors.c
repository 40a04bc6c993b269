/* libFuzzer target: safetensors loading of arbitrary bytes, through a reader (copying) and a
 * memory-mapped file. Both must agree; anything that loads must save and reload unchanged. */
#include "fuzz_io_common.h"

static mlx_stream cpu;

int LLVMFuzzerInitialize(int* argc, char*** argv) {
  fuzz_setup(".safetensors");
  cpu = mlx_default_cpu_stream_new();
  return 0;
}

/* Loads through an in-memory reader; returns the status. */
static int load_reader(const void* data, size_t size, mlx_map_string_to_array* t,
                       mlx_map_string_to_string* meta) {
  memstream in = memstream_over(data, size);
  mlx_io_reader r = mlx_io_reader_new(&in, memstream_vtable());
  int status = mlx_load_safetensors_reader(t, meta, r, cpu);
  mlx_io_reader_free(r);
  return status;
}

/* Every tensor of `a` is in `b` with the same contents, and the counts match. */
static void check_same_maps(mlx_map_string_to_array a, mlx_map_string_to_array b) {
  mlx_map_string_to_array_iterator it = mlx_map_string_to_array_iterator_new(a);
  const char* key;
  mlx_array va = mlx_array_new(), vb = mlx_array_new();
  size_t count = 0;
  while (!mlx_map_string_to_array_iterator_next(&key, &va, it)) {
    if (mlx_map_string_to_array_get(&vb, b, key)) abort();
    fuzz_check_same(va, vb);
    count++;
  }
  mlx_map_string_to_array_iterator_free(it);
  it = mlx_map_string_to_array_iterator_new(b);
  while (!mlx_map_string_to_array_iterator_next(&key, &vb, it)) count--;
  if (count) abort();
  mlx_map_string_to_array_iterator_free(it);
  mlx_array_free(va);
  mlx_array_free(vb);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mlx_map_string_to_array from_reader = mlx_map_string_to_array_new();
  mlx_map_string_to_array from_file = mlx_map_string_to_array_new();
  mlx_map_string_to_array again = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  mlx_map_string_to_string meta_again = mlx_map_string_to_string_new();
  int reader_status = load_reader(data, size, &from_reader, &meta);
  fuzz_write_input(data, size);
  int file_status = mlx_load_safetensors(&from_file, &meta, fuzz_path, cpu);
  if ((reader_status == 0) != (file_status == 0)) abort();
  if (file_status == 0) {
    check_same_maps(from_reader, from_file);
    memstream out = {0};
    mlx_io_writer w = mlx_io_writer_new(&out, memstream_vtable());
    if (mlx_save_safetensors_writer(w, from_file, meta)) abort();
    mlx_io_writer_free(w);
    if (load_reader(out.data, out.size, &again, &meta_again)) abort();
    check_same_maps(from_file, again);
    free(out.data);
  }
  mlx_map_string_to_array_free(from_reader);
  mlx_map_string_to_array_free(from_file);
  mlx_map_string_to_array_free(again);
  mlx_map_string_to_string_free(meta);
  mlx_map_string_to_string_free(meta_again);
  return 0;
}
