#!/usr/bin/env python3
"""Turn bench/run.sh's results.tsv into the README's markdown rows."""
import sys

names = {"check": "thin_check", "check-skip": "thin_check --skip-mappings", "dump": "thin_dump",
         "restore": "thin_restore", "repair": "thin_repair",
         "ls-excl": "thin_ls (EXCLUSIVE/SHARED)", "rmap": "thin_rmap (10 % of data)",
         "delta": "thin_delta"}
rows = {}
for line in open(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench/results.tsv"):
    f = line.rstrip("\n").split("\t")
    if f[0] == "scale" or len(f) < 8:
        continue
    rows[(f[0], f[1])] = f          # last measurement wins
order = ["small", "medium", "large"]
for scale in order:
    for tool in names:
        f = rows.get((scale, tool))
        if not f:
            continue
        _, _, rs, rm, os_, om, ratio, _ = f
        print(f"| {scale} | {names[tool]} | {float(rs):.3f} s | {float(os_):.3f} s | "
              f"**{ratio}×** | {int(rm) / 1024:.0f} → {int(om) / 1024:.0f} MiB |")
