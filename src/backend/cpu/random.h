/* Threefry-2x32 (20 rounds), the hash under mlx random. */
#ifndef MLXC_CPU_RANDOM_H
#define MLXC_CPU_RANDOM_H

#include <stdint.h>

void cpu_threefry2x32(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1, uint32_t out[2]);

#endif
