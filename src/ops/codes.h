/* Codes that select the member of an op family inside a shared kernel. */
#ifndef MLXC_OPS_CODES_H
#define MLXC_OPS_CODES_H

typedef enum {
  BINARY_ADD,
  BINARY_SUBTRACT,
  BINARY_MULTIPLY,
  BINARY_DIVIDE,
  BINARY_CODE_COUNT
} binary_code;

#endif
