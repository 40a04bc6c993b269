#!/usr/bin/env python3
"""Block timestamps inside the tensor-core decode attention (the sixteenth session's tool).

The kernel is a chain of serial steps after its chain wait; a kernel trace gives only its total.
This inserts %globaltimer reads at fixed points of every block into a copy of
src/backend/cuda/attention_decode.cu, and reads the dump back:

  git worktree add /tmp/probe HEAD && cd /tmp/probe
  python3 scripts/attention_probe.py apply src/backend/cuda/attention_decode.cu
  (build bench_lm_gpu there with CUDA, e.g. scripts/cuda_device_check.sh pack, and on the GPU:)
  MLXC_ATTN_PROBE_OUT=t.txt bench_lm_gpu --shape qwen05 --precisions bf16 --contexts 128 --decode 64
  MLXC_DECODE_ATTN_WIDE=0 ...    (the same, with the chunked kernel and its merge)
  python3 scripts/attention_probe.py report t.txt

The report gives, per role of block ("last": the one that merged the chunks), the median time
of each point in microseconds after the first block's chain wait. Only for measurements: the
probes add stores and a launch counter to every block. `apply` fails where an anchor moved."""
import collections
import statistics
import sys

POINTS = ['entry', 'before wait', 'waited', 'q and mask', 'q staged', 'tiles', 'states stored', 'arrived', 'end']

DEVICE = r'''
__device__ unsigned int attn_probe_launch;
__device__ unsigned long long attn_probe[1024][16][9];
__device__ __forceinline__ void probe_mark(int point, unsigned int launch, unsigned long long flag = 0) {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  if (threadIdx.x == 0 && blockIdx.y * gridDim.x + blockIdx.x < 16)
    attn_probe[launch % 1024][blockIdx.y * gridDim.x + blockIdx.x][point] = t | flag;
}
'''

HOST = r'''
static void attn_probe_dump(void) {
  static unsigned long long h[1024][16][9];
  unsigned int n = 0;
  cudaDeviceSynchronize();
  if (cudaMemcpyFromSymbol(&n, attn_probe_launch, sizeof n) || cudaMemcpyFromSymbol(h, attn_probe, sizeof h)) return;
  FILE* f = fopen(getenv("MLXC_ATTN_PROBE_OUT") ? getenv("MLXC_ATTN_PROBE_OUT") : "attn_probe.txt", "w");
  if (!f) return;
  for (unsigned int l = 0; l < (n < 1024 ? n : 1024); l++)
    for (int b = 0; b < 16; b++) {
      if (!h[l][b][0]) continue;
      fprintf(f, "%u %d", l, b);
      for (int p = 0; p < 9; p++) fprintf(f, " %llu", h[l][b][p]);
      fprintf(f, "\n");
    }
  fclose(f);
}

'''


def apply(path):
    s = open(path).read()

    def insert(anchor, text, before=False):
        nonlocal s
        if s.count(anchor) != 1:
            raise SystemExit(f'anchor found {s.count(anchor)} times: {anchor[:60]!r}')
        s = s.replace(anchor, text + anchor if before else anchor + text)

    insert('__device__ unsigned int dec_arrivals[65536];\n', DEVICE)
    insert('  using namespace mma_attn;\n',
           '  const unsigned int probe_launch = *(volatile unsigned int*)&attn_probe_launch;\n'
           '#define PROBE(i) probe_mark(i, probe_launch)\n  PROBE(0);\n')
    insert('  gpu_chain_wait();\n  if (!early_tile)', '  PROBE(1);\n', before=True)
    insert('  gpu_chain_wait();\n  if (!early_tile) stage(j0, 0);\n', '  PROBE(2);\n')
    insert('    j1 = j0 + s_last + 1;  // j0: nothing seen, no tile is computed\n  }\n', '  PROBE(3);\n')
    insert('      Qs[(idx / D) * LD + idx % D] = qv[i];\n    }\n  }\n  __syncthreads();\n', '  PROBE(4);\n')
    insert('  asm volatile("cp.async.wait_group 0;\\n" ::);\n  __syncthreads();\n  gpu_chain_release();',
           '  PROBE(5);\n', before=True)
    insert('    sL[warp * 16 + g] = l[0], sL[warp * 16 + g + 8] = l[1];\n  }\n  __syncthreads();\n', '  PROBE(6);\n')
    # The merging block marks its arrival (flagged), every block its end; block (0, 0) counts launches.
    insert('  if (s_last) combine_chunks<D>(', '  if (probe) probe_mark(7, probe_launch, s_last ? 1ull << 63 : 0);\n',
           before=True)
    insert('int splits,\n                                    int b, int kvh',
           ', bool probe = false, unsigned int probe_launch = 0')
    insert('    if (splits > 1) publish_and_combine<D>(out, out_dtype, partial, A, splits, b, kvh);\n  }\n',
           '  PROBE(8);\n  if (threadIdx.x == 0 && blockIdx.x + blockIdx.y == 0) atomicAdd(&attn_probe_launch, 1u);\n'
           '#undef PROBE\n')
    insert('    if (splits > 1) publish_and_combine<D>(out, out_dtype, partial, A, splits, b, kvh', ', true, probe_launch')
    insert('// Resident blocks per SM of an instantiation', HOST, before=True)
    insert('  gpu_decode_rope_args R = *rope;\n',
           '  static bool registered = false;\n  if (!registered) registered = true, atexit(attn_probe_dump);\n')
    insert('#include <string.h>\n', '#include <stdio.h>\n')
    open(path, 'w').write(s)


def report(path):
    launches = collections.defaultdict(list)
    for line in open(path):
        f = [int(x) for x in line.split()]
        launches[f[0]].append(f[2:])
    times = collections.defaultdict(list)
    for blocks in list(launches.values())[len(launches) // 4:]:  # steady state: the first quarter is warm-up
        waited = min(b[2] for b in blocks)
        for b in blocks:
            role = 'last' if b[7] >> 63 else 'other'
            for p, t in enumerate(b):
                t &= (1 << 63) - 1
                if t:
                    times[(role, p)].append((t - waited) / 1000.0)
    for role in ('other', 'last'):
        marks = [f'{POINTS[p]} {statistics.median(times[(role, p)]):.2f}' for p in range(9) if times[(role, p)]]
        if marks:
            print(f'{role:5}  ' + ', '.join(marks))
    print(f'{len(launches)} launches')


if __name__ == '__main__':
    if len(sys.argv) != 3 or sys.argv[1] not in ('apply', 'report'):
        raise SystemExit(__doc__)
    (apply if sys.argv[1] == 'apply' else report)(sys.argv[2])
