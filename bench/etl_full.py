"""Benchmark of a full `etl run` on the demo (prints figures, asserts nothing).

    .venv/bin/python bench/etl_full.py --scale city [--out DIR] [--warehouse URL] [--repeat]

Generates the demo into DIR unless it is already there, runs the whole
pipeline (load, integrity, coverage, other rules, metrics, scores) into the
warehouse (default: a fresh SQLite file in DIR; pass a PostgreSQL URL of an
empty database for the production figures) and prints the time of every step
and the peak RSS.  ``--repeat`` runs it a second time with unchanged sources
(the incremental path).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from etl import pipeline  # noqa: E402
from etl.demo import generate  # noqa: E402


def machine_probe(label: str) -> float:
    """Print and return the seconds a fixed pure-Python loop (30M additions) takes now.

    The shared machines this runs on change speed over a session (seen here: 1.0 to 1.9 s within one hour,
    with nothing else of ours running), so every figure is printed beside it.  It reads the CPU only: the
    runs also wait on memory and disk, and their times moved more than the probe did.
    """
    t = time.perf_counter()
    s = 0
    for i in range(30_000_000):
        s += i
    sec = time.perf_counter() - t
    print(f"machine speed probe ({label}): {sec:.2f} s for 30M Python additions (lower is faster)")
    return sec


def _print_run(label: str, result: pipeline.RunResult, wall: float) -> None:
    t = dict(result.timings)
    rt = (result.rules or {}).get("timings") or {}
    print(f"[{label}] wall {wall:.1f} s")
    print(f"  load        {t.get('load', 0):8.2f} s")
    print(f"  integrity   {t.get('integrity', 0):8.2f} s")
    for step in ("coverage", "rules", "data_quality", "metrics", "scores", "snapshots"):
        print(f"  {step:<11} {rt.get(step, 0):8.2f} s")
    print(f"  rules total {t.get('rules', 0):8.2f} s (coverage + other rules + metrics + scores + snapshots)")
    counts = (result.rules or {}).get("findings") or {}
    print(f"  findings    {sum(counts.values()):8,}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="city", choices=["small", "city"])
    ap.add_argument("--out", default=None, help="demo folder (default /tmp/av_bench_<scale>)")
    ap.add_argument("--warehouse", default=None, help="warehouse URL (default: sqlite file in the demo folder)")
    ap.add_argument("--repeat", action="store_true", help="run a second time with unchanged sources")
    args = ap.parse_args()
    out = Path(args.out or f"/tmp/av_bench_{args.scale}")
    if not (out / "sources.yaml").exists():
        t = time.perf_counter()
        print(generate(out, scale=args.scale))
        print(f"demo: {time.perf_counter() - t:.1f} s")
    url = args.warehouse or f"sqlite:///{out / 'warehouse.sqlite'}"
    if url.startswith("sqlite:///") and not args.repeat:
        Path(url[len("sqlite:///") :]).unlink(missing_ok=True)
    print(f"warehouse: {url.split('@')[-1]}")
    machine_probe("before")
    t = time.perf_counter()
    result = pipeline.run(out / "sources.yaml", warehouse=url, progress=False)
    _print_run("first run", result, time.perf_counter() - t)
    if args.repeat:
        t = time.perf_counter()
        result = pipeline.run(out / "sources.yaml", warehouse=url, progress=False)
        _print_run("unchanged sources", result, time.perf_counter() - t)
    rss = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    print(f"peak RSS: {rss / 1024:,.0f} MB")
    machine_probe("after")


if __name__ == "__main__":
    main()
