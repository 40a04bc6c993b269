/* mlx-c error handling: every call returns 0 on success and non-zero on failure, and reports a
 * message through the handler set here.
 *
 *   static void on_error(const char* msg, void* data) { fprintf(stderr, "oops: %s\n", msg); }
 *   mlx_set_error_handler(on_error, NULL, NULL);
 *
 * Unlike upstream mlx-c, mlxc's default handler never exits: it prints the message to stderr and
 * the last message stays readable with mlxc_last_error() (include/mlxc/error.h). */
#ifndef MLX_C_ERROR_H
#define MLX_C_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*mlx_error_handler_func)(const char* msg, void* data);

/* Installs a handler for all threads; NULL restores the default. `dtor` (may be NULL) is called
 * on `data` when the handler is replaced. */
void mlx_set_error_handler(mlx_error_handler_func handler, void* data, void (*dtor)(void*));

#ifdef __cplusplus
}
#endif

#endif
