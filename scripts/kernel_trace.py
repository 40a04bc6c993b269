#!/usr/bin/env python3
"""Each decode step's critical path from a kernel trace (bench/kernel_trace.c).

  MLXC_KERNEL_TRACE=t.txt LD_PRELOAD=libmlxc_kernel_trace.so bench_lm_gpu --shape qwen05 \\
      --precisions bf16 --contexts 128 --decode 16 --layers 4
  python3 scripts/kernel_trace.py t.txt --step-grid 18992

A step is the run of kernels after one launch of the kernel with grid --step-grid (the LM
head's GEMV: its grid is the vocabulary over the rows a block takes) up to the next, among the
runs that hold a kernel named like --marker (rope_kv: decode steps, not prefills). For every
kernel position of the last --steps steps it prints the median of what that kernel adds to the
step after the kernels before it ended (its end minus the latest end before it: the critical
path, with chained kernels overlapping), its median duration, and the step's idle time.
"""
import argparse
import re
import statistics


def short(name):
    m = re.search(r'_cu_[0-9a-f]{8}(\d+)', name)
    if m:
        n = int(m.group(1))
        start = m.end()
        return name[start:start + n]
    return name[:40]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('trace')
    ap.add_argument('--step-grid', type=int, required=True)
    ap.add_argument('--marker', default='rope_kv')
    ap.add_argument('--steps', type=int, default=8)
    a = ap.parse_args()
    kernels = []
    for line in open(a.trace):
        parts = line.rstrip('\n').split(' ', 3)
        if len(parts) == 4:
            kernels.append((int(parts[0]), int(parts[1]), int(parts[2]), parts[3]))
    kernels.sort()
    ends = [i for i, k in enumerate(kernels) if k[2] == a.step_grid]
    steps = [(x, y) for x, y in zip(ends, ends[1:]) if any(a.marker in k[3] for k in kernels[x:y])][-a.steps:]
    if not steps:
        raise SystemExit('no decode step found (check --step-grid and --marker)')
    rows, idle, spans = {}, [], []
    for first, last in steps:
        latest = kernels[first][1]
        gap = 0
        for pos, (s, e, g, name) in enumerate(kernels[first + 1:last + 1]):
            gap += max(0, s - latest)
            rows.setdefault(pos, (short(name), g, [], []))
            rows[pos][2].append((e - latest) / 1e3)
            rows[pos][3].append((e - s) / 1e3)
            latest = max(latest, e)
        idle.append(gap / 1e3)
        spans.append((kernels[last][1] - kernels[first][1]) / 1e3)
    total = 0.0
    print(f'{"#":>3} {"kernel":28} {"grid":>6} {"adds us":>8} {"runs us":>8}')
    for pos in sorted(rows):
        name, g, adds, runs = rows[pos]
        med = statistics.median(adds)
        total += med
        print(f'{pos:3d} {name[:28]:28} {g:6d} {med:8.2f} {statistics.median(runs):8.2f}')
    print(f'step {statistics.median(spans):.1f} us (sum of medians {total:.1f}), idle {statistics.median(idle):.1f} us, '
          f'{len(steps)} steps')


if __name__ == '__main__':
    main()
