"""Benchmark: the city-wide annual assessment workbook (target ≤ 10 s at city scale).

    python bench/workbook.py --warehouse sqlite:///data/warehouse.sqlite --period 2026
    python bench/workbook.py --synthetic /tmp/wb_city.sqlite            # builds it first when missing

``--synthetic`` writes a city-sized warehouse with the test fixtures
(tests/workbook_fixtures.py: 1 city, 12 counties, 144 stations, ~100k
findings, scores of the measures-2026 scheme) plus ``--extra-clips`` clips
dated in 2025 so the clip table has city volume.  Prints the time of each
run, the time of the scoring step's lost-points computation (measured again
on its own), the size of every sheet and the peak RSS of the builds.  Run one
city-scale benchmark at a time.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import openpyxl  # noqa: E402

from etl.reports.workbook import build_workbook, data, details  # noqa: E402
from etl.scoring.schemes import scheme_for  # noqa: E402
from etl.warehouse.db import bulk_insert, make_engine  # noqa: E402


def build_synthetic(path: Path, extra_clips: int) -> None:
    from tests import workbook_fixtures as wf

    t = time.perf_counter()
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        wf.populate(conn, counties=12, stations=12, scale=10, year_only=True, payloads=False)
        devices = [r[0] for r in conn.exec_driver_sql("SELECT device_sn FROM devices ORDER BY device_sn")]
        rows = (
            (
                f"X{i:09d}",
                devices[i % len(devices)],
                f"2025-{i % 12 + 1:02d}-{i % 28 + 1:02d} {i % 24:02d}:00:00",
                f"2025-{i % 12 + 1:02d}-{i % 28 + 1:02d} {i % 24:02d}:10:00",
                f"2025-{i % 12 + 1:02d}-{i % 28 + 1:02d} {i % 24:02d}:10:00",
            )
            for i in range(extra_clips)
        )
        batch: list[tuple] = []
        for r in rows:
            batch.append(r)
            if len(batch) == 200_000:
                bulk_insert(conn, "clips", batch, ["clip_id", "device_sn", "started_at", "ended_at", "updated_at"])
                batch = []
        if batch:
            bulk_insert(conn, "clips", batch, ["clip_id", "device_sn", "started_at", "ended_at", "updated_at"])
    engine.dispose()
    print(f"synthetic city warehouse {path}: built in {time.perf_counter() - t:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", help="SQLAlchemy URL of a loaded warehouse")
    ap.add_argument("--synthetic", type=Path, help="SQLite file for a synthetic city warehouse (built if missing)")
    ap.add_argument("--extra-clips", type=int, default=2_500_000)
    ap.add_argument("--period", default="2026")
    ap.add_argument("--unit", default=None)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="also write the workbook here")
    args = ap.parse_args()
    if args.synthetic:
        if not args.synthetic.exists():
            build_synthetic(args.synthetic, args.extra_clips)
        url = f"sqlite:///{args.synthetic}"
    else:
        url = args.warehouse or os.environ.get("WAREHOUSE_URL") or "sqlite:///data/warehouse.sqlite"
    engine = make_engine(url)
    print(
        f"warehouse: {engine.url.render_as_string(hide_password=True)}  period {args.period}  "
        f"scope {args.unit or '全市'}"
    )

    times, cpu = [], []
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        content = build_workbook(
            engine, period=args.period, unit_code=args.unit, generated_at=datetime(2026, 12, 1, 9, 0, 0)
        )
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    with engine.connect() as conn:
        per = data.parse_period(args.period)
        units = data.read_units(conn)
        scope, _ = data.resolve_scope(units, args.unit, None)
        scores, items, sid, _ = data.read_scores(conn, per, scope, None)
        metrics = data.read_metrics(conn, per, scope)
        t = time.perf_counter()
        details.lost_points(conn, per.code, set(scores["unit_code"]), scheme_for(sid), items, metrics)
        t_lost = time.perf_counter() - t
    engine.dispose()
    if args.out:
        args.out.write_bytes(content)
    wb = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    sizes = ", ".join(f"{ws.title} {ws.max_row - 1} 行" for ws in wb.worksheets)
    print(f"workbook: {len(content) / 1e6:.1f} MB; {sizes}")
    print(
        f"build_workbook: best {min(times):.2f} s wall ({min(cpu):.2f} s CPU of this process; on a busy machine "
        f"wall > CPU), runs {', '.join(f'{x:.2f}' for x in times)}; of which the lost points "
        f"(lost_points.lost_points_by_level_detail) ≈ {t_lost:.2f} s wall; peak RSS {peak:.0f} MB; target ≤ 10 s"
    )


if __name__ == "__main__":
    main()
