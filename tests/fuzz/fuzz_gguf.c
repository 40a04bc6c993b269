/* libFuzzer target: GGUF loading of arbitrary bytes (memory-mapped), with quantized tensors kept
 * affine and dequantized. Whatever loads is read in full; the dequantized contents must save,
 * and saving what that file loads must give the same bytes again. */
#include "fuzz_io_common.h"
#include "mlxc/gguf.h"

static mlx_stream cpu;
static char saved_path[96], resaved_path[96];

int LLVMFuzzerInitialize(int* argc, char*** argv) {
  fuzz_setup(".gguf");
  cpu = mlx_default_cpu_stream_new();
  (void)memstream_vtable; /* GGUF has no stream API: the shared memory stream goes unused */
  (void)memstream_over;
  snprintf(saved_path, sizeof saved_path, "%s.saved.gguf", fuzz_path);
  snprintf(resaved_path, sizeof resaved_path, "%s.resaved.gguf", fuzz_path);
  return 0;
}

/* Reads every byte of every tensor of g; with `other`, each must equal other's tensor of that
 * name, and other must have no more tensors. */
static void read_all(mlx_io_gguf g, mlx_io_gguf* other) {
  mlx_vector_string keys = mlx_vector_string_new(), other_keys = mlx_vector_string_new();
  if (mlx_io_gguf_get_keys(&keys, g)) abort();
  mlx_array a = mlx_array_new(), b = mlx_array_new();
  for (size_t i = 0; i < mlx_vector_string_size(keys); i++) {
    char* name;
    size_t n;
    if (mlx_vector_string_get(&name, keys, i) || mlx_io_gguf_get_array(&a, g, name)) abort();
    fuzz_bytes(a, &n);
    if (other) {
      if (mlx_io_gguf_get_array(&b, *other, name)) abort();
      fuzz_check_same(a, b);
    }
  }
  if (other && (mlx_io_gguf_get_keys(&other_keys, *other) ||
                mlx_vector_string_size(other_keys) != mlx_vector_string_size(keys)))
    abort();
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_vector_string_free(keys);
  mlx_vector_string_free(other_keys);
}

/* Saving pads to general.alignment: skip the save checks for alignments of megabytes. */
static bool modest_alignment(mlx_io_gguf g) {
  mlx_array a = mlx_array_new();
  bool modest = true;
  if (mlx_io_gguf_has_metadata_array(&modest, g, "general.alignment") == 0 &&
      !mlx_io_gguf_get_metadata_array(&a, g, "general.alignment")) {
    size_t n;
    modest = *(const uint32_t*)fuzz_bytes(a, &n) <= 4096;
  } else {
    modest = true;
  }
  mlx_array_free(a);
  return modest;
}

static unsigned char* slurp(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (!f) abort();
  fseek(f, 0, SEEK_END);
  *size = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char* data = malloc(*size ? *size : 1);
  if (!data || fread(data, 1, *size, f) != *size) abort();
  fclose(f);
  return data;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mlx_io_gguf affine = mlx_io_gguf_new(), plain = mlx_io_gguf_new(), again = mlx_io_gguf_new();
  mlxc_gguf_load_params params = mlxc_gguf_load_default_params();
  params.quantized = false;
  params.dtype = MLX_FLOAT32;
  fuzz_write_input(data, size);
  int affine_status = mlx_load_gguf(&affine, fuzz_path, cpu);
  int plain_status = mlxc_gguf_load(&plain, fuzz_path, params);
  /* the affine form can only add failures (a float16 bias overflow, a ".scales" name taken) */
  if (affine_status == 0 && plain_status != 0) abort();
  if (affine_status == 0) read_all(affine, NULL);
  if (plain_status == 0) read_all(plain, NULL);
  if (plain_status == 0 && modest_alignment(plain)) {
    if (mlx_save_gguf(saved_path, plain)) abort();
    if (mlx_load_gguf(&again, saved_path, cpu)) abort();
    read_all(again, &plain);
    if (mlx_save_gguf(resaved_path, again)) abort();
    size_t n1, n2;
    unsigned char* first = slurp(saved_path, &n1);
    unsigned char* second = slurp(resaved_path, &n2);
    if (n1 != n2 || memcmp(first, second, n1)) abort();
    free(first);
    free(second);
    unlink(saved_path);
    unlink(resaved_path);
  }
  mlx_io_gguf_free(affine);
  mlx_io_gguf_free(plain);
  mlx_io_gguf_free(again);
  return 0;
}
