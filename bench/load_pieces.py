"""Benchmark: the first load (no rules) whole and in pieces (``etl.load_piece_rows``), time and memory.

    .venv/bin/python bench/load_pieces.py SOURCES_YAML ADMIN_URL [--pieces 0,500000,200000] [--stages]

Each size loads ``SOURCES_YAML`` (e.g. ``etl demo --scale city --no-media``) into a fresh PostgreSQL database
made from ``ADMIN_URL`` (dropped afterwards), in a child process with its own settings file; 0 means whole
(a piece size above any table).  Prints the wall time, the child's peak RSS (VmHWM) and the tables loaded in
pieces; ``--stages`` also prints the peak RSS per load stage (sampled every 50 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, threading, time
from pathlib import Path
from etl import pipeline
from etl.progress import Progress

stage, peaks = ["start"], {}

def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS"))

def sample():
    while True:
        peaks[stage[0]] = max(peaks.get(stage[0], 0), rss())
        time.sleep(0.05)

threading.Thread(target=sample, daemon=True).start()
for name in ("stage", "start"):
    def wrap(self, label, *a, _orig=getattr(Progress, name), **k):
        stage[0] = label.split("（")[0]
        return _orig(self, label, *a, **k)
    setattr(Progress, name, wrap)
t0 = time.perf_counter()
result = pipeline.run(Path(sys.argv[1]), sys.argv[2], rules=False, progress=False)
seconds = time.perf_counter() - t0
with open("/proc/self/status") as f:
    hwm = next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmHWM"))
print(json.dumps({
    "status": result.status, "seconds": seconds, "peak_mb": hwm, "stages": peaks,
    "pieces": {k: v.pieces for k, v in result.tables.items() if v.pieces},
    "table_seconds": {k: round(v.seconds, 1) for k, v in result.tables.items()},
}, ensure_ascii=False))
"""


def one(sources: Path, admin: str, rows: int) -> dict:
    name = f"bench_pieces_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    url = admin.rsplit("/", 1)[0] + "/" + name
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(f"etl:\n  load_piece_rows: {rows or 10**12}\n")
        env = {**os.environ, "AVSUP_SETTINGS": f.name, "PYTHONPATH": str(ROOT)}
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(sources), url], env=env, capture_output=True, text=True, cwd=ROOT
        )
        os.unlink(f.name)
        if out.returncode != 0:
            raise SystemExit(out.stderr.strip().splitlines()[-1])
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        with engine.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", type=Path)
    ap.add_argument("admin_url")
    ap.add_argument("--pieces", default="0,500000", help="piece sizes to measure; 0: whole")
    ap.add_argument("--stages", action="store_true", help="peak RSS per load stage")
    args = ap.parse_args()
    for rows in [int(x) for x in args.pieces.split(",")]:
        fig = one(args.sources.resolve(), args.admin_url, rows)
        label = "whole" if not rows else f"pieces of {rows:,}"
        pieces = ", ".join(f"{k} {v}" for k, v in fig["pieces"].items()) or "none"
        print(
            f"{label:>20}: {fig['seconds']:7.1f} s, peak RSS {fig['peak_mb']:,} MB ({fig['status']}; pieces: {pieces})"
        )
        print(f"{'':>24}seconds per table: " + ", ".join(f"{k} {v}" for k, v in fig["table_seconds"].items() if v >= 1))
        if args.stages:
            for stage, mb in fig["stages"].items():
                print(f"{'':>24}{mb:>7,} MB  {stage}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
