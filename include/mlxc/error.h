/* mlxc extensions to error handling, shared by the array API and the models layer.
 *
 *   if (mlx_add(&c, a, b, s) != 0) fprintf(stderr, "failed: %s\n", mlxc_last_error());
 */
#ifndef MLXC_ERROR_H
#define MLXC_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* The message of the last failure on the calling thread ("" when none). Valid until the next
 * failure on this thread. */
const char* mlxc_last_error(void);

/* Forgets the calling thread's last message. */
void mlxc_clear_error(void);

/* When quiet (the default is not quiet), the default handler stops printing messages to stderr;
 * mlxc_last_error() still records them. Returns the previous setting. */
int mlxc_set_errors_quiet(int quiet);

#ifdef __cplusplus
}
#endif

#endif
