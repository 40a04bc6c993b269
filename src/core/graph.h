/* Graph internals shared by array.c and graph.c. */
#ifndef MLXC_CORE_GRAPH_H
#define MLXC_CORE_GRAPH_H

#include "core/array.h"

/* Frees a node whose reference count reached zero, including outputs that died before it
 * (kept as zombies because their siblings were alive), except `dying` (freed by the caller).
 * Inputs must already be released. */
void core_node_destroy(core_node* node, core_array* dying);

/* Frees an array's own memory and its buffer reference (no graph bookkeeping). */
void core_array_free_memory(core_array* a);

#endif
