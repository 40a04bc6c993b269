#!/usr/bin/env python3
"""Per-kernel time from an Nsight Compute CSV (ncu --csv --metrics gpu__time_duration.sum).

Usage: ncu_summary.py FILE.csv [--top N] [--skip K]
Prints, per kernel name, total and mean duration and the call count, largest total first.
--skip K drops the first K launches (warm-up, weight initialisation)."""
import collections
import csv
import sys


def main(argv):
    path, top, skip = argv[1], 20, 0
    if "--top" in argv:
        top = int(argv[argv.index("--top") + 1])
    if "--skip" in argv:
        skip = int(argv[argv.index("--skip") + 1])
    rows = [r for r in csv.reader(open(path, errors="replace")) if len(r) > 10]
    if not rows:
        sys.exit(f"{path}: no ncu rows")
    hdr = rows[0]
    name_col, value_col, id_col = hdr.index("Kernel Name"), hdr.index("Metric Value"), hdr.index("ID")
    total, count = collections.defaultdict(float), collections.Counter()
    for r in rows[1:]:
        try:
            launch, ns = int(r[id_col]), float(r[value_col].replace(",", ""))
        except ValueError:
            continue
        if launch < skip:
            continue
        name = r[name_col].replace("(anonymous namespace)::", "").replace("<unnamed>::", "")
        name = name.split("(")[0] if not name.startswith("void") else name[5:].split("(")[0]
        total[name] += ns
        count[name] += 1
    grand = sum(total.values())
    print(f"{'total us':>10} {'mean us':>9} {'calls':>6}  kernel   (all: {grand / 1000:.1f} us)")
    for name, ns in sorted(total.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{ns / 1000:10.1f} {ns / 1000 / count[name]:9.2f} {count[name]:6d}  {name[:90]}")


if __name__ == "__main__":
    main(sys.argv)
