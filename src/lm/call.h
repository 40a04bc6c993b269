/* Error propagation for sequences of mlx-c calls: CALL jumps to `cleanup:` with `status` set. */
#ifndef MLXC_LM_CALL_H
#define MLXC_LM_CALL_H

#define CALL(expr)             \
  do {                         \
    status = (expr);           \
    if (status) goto cleanup;  \
  } while (0)

#endif
