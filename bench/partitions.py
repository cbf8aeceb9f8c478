"""The evaluation whole and by partition on one loaded warehouse: time and peak memory (issue 18, part 4).

    .venv/bin/python bench/partitions.py WAREHOUSE_URL [--as-of "YYYY-MM-DD HH:MM:SS"] [--budgets 0,1500000,600000]

Each measurement runs ``etl.evaluation.evaluate`` in a fresh Python process, inside a transaction that is rolled
back (the warehouse stays as it was), with ``partition_rows`` = the budget (0: the whole warehouse in one
group).  Prints, per budget: the groups, the seconds, the step timings, and the process's peak resident memory
(``VmHWM``), also of a process that only imported the modules and connected (the base).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
from datetime import datetime
import sqlalchemy as sa
from etl.evaluation import evaluate
from etl.warehouse.partitions import WHOLE, plan

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

url, as_of, budget = sys.argv[1], datetime.fromisoformat(sys.argv[2]), int(sys.argv[3])
engine = sa.create_engine(url)
with engine.connect() as conn:
    trans = conn.begin()
    parts = plan(conn, budget) if budget else [WHOLE]
    base = hwm()
    t = time.perf_counter()
    out = evaluate(conn, as_of=as_of, integrity_checked=False, partitions=parts)
    seconds = time.perf_counter() - t
    trans.rollback()
print(json.dumps({"budget": budget, "groups": len(parts), "seconds": round(seconds, 1), "base_mb": round(base),
                  "peak_mb": round(hwm()), "findings": sum(out["findings"].values()),
                  "timings": {k: round(v, 1) for k, v in out["timings"].items()}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("warehouse")
    ap.add_argument("--as-of", default="2026-11-28 23:59:59")
    ap.add_argument("--budgets", default="0,1500000,600000")
    args = ap.parse_args()
    for budget in [int(b) for b in args.budgets.split(",")]:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, args.warehouse, args.as_of, str(budget)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode:
            print(f"budget {budget}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            sys.exit(1)
        print(json.dumps(json.loads(out.stdout.strip().splitlines()[-1]), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
