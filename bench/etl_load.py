"""Benchmark: full load (no rules) of the city-scale demo into SQLite and PostgreSQL.

    .venv/bin/python bench/etl_load.py --scale city [--only sqlite|postgres] [--rebuild]

Builds the demo once (``python -m etl demo --scale city --no-media``), cached in
``bench/.cache/<scale>/``; if the demo generator fails, a synthetic source of
the same size is written instead.  Each load runs in a child process into a
fresh warehouse, which reports its own peak RSS.  Prints rows/s per table.
Goal (issue 2): city load into SQLite <= 60 s, peak RSS <= 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def build_sources(scale: str, rebuild: bool) -> Path:
    out = CACHE / scale
    sources = out / "sources.yaml"
    if sources.exists() and not rebuild:
        return sources
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "etl", "demo", "--scale", scale, "--no-media", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not sources.exists():
        print(f"demo generator failed ({proc.stderr.strip().splitlines()[-1:] or '?'}); writing synthetic sources")
        synthetic_city(out, scale)
    print(f"sources built in {time.perf_counter() - t0:.0f} s: {out}")
    return sources


def synthetic_city(out: Path, scale: str) -> None:
    """A vectorised stand-in of the city's size (valid rows only), written as SQLite sources."""
    import sqlite3

    import numpy as np
    import pandas as pd

    from etl.sources.contract import TABLES

    n_clips, n_inc, n_cases = (2_500_000, 250_000, 80_000) if scale == "city" else (20_000, 2_000, 600)
    rng = np.random.default_rng(2026)
    out.mkdir(parents=True, exist_ok=True)
    units = ["140400000000"] + [f"1404{c:02d}000000" for c in range(1, 13)]
    units += [f"1404{c:02d}5{s:02d}000" for c in range(1, 13) for s in range(12)]
    parents = [None] + ["140400000000"] * 12 + [f"1404{c:02d}000000" for c in range(1, 13) for _ in range(12)]
    levels = ["city"] + ["county"] * 12 + ["station"] * 144
    t0 = np.datetime64("2026-01-01 00:00:00")

    def ts(sec: np.ndarray) -> np.ndarray:
        return np.char.replace(np.datetime_as_string(t0 + sec.astype("timedelta64[s]"), unit="s"), "T", " ")

    stations = np.array(units[13:])
    officers = np.array([f"{i:06d}" for i in range(3000)])
    devices = np.array([f"DSJ{i:06d}" for i in range(3500)])
    frames = {
        "org_units": pd.DataFrame(
            {"unit_code": units, "name": [f"单位{u}" for u in units], "parent_code": parents, "level": levels}
        ),
        "officers": pd.DataFrame(
            {
                "police_no": officers,
                "name": "民警",
                "unit_code": stations[np.arange(3000) % 144],
                "kind": "police",
                "leader": "0",
                "active": "1",
            }
        ),
        "devices": pd.DataFrame(
            {
                "device_sn": devices,
                "kind": "bodycam",
                "model": "V9",
                "unit_code": stations[np.arange(3500) % 144],
                "status": "in_use",
                "status_since": "2025-12-01 00:00:00",
                "purchased_at": "2025-11-01",
            }
        ),
    }
    start = np.sort(rng.integers(0, 365 * 86400, n_inc))
    frames["incidents"] = pd.DataFrame(
        {
            "incident_no": [f"J{i:010d}" for i in range(n_inc)],
            "unit_code": stations[rng.integers(0, 144, n_inc)],
            "category": "纠纷",
            "received_at": ts(start),
            "arrived_at": ts(start + 600),
            "ended_at": ts(start + 2400),
            "on_site": "1",
            "case_no": None,
            "updated_at": ts(start + 3600),
        }
    )
    cstart = np.sort(rng.integers(0, 365 * 86400, n_cases))
    frames["cases"] = pd.DataFrame(
        {
            "case_no": [f"C{i:09d}" for i in range(n_cases)],
            "unit_code": stations[rng.integers(0, 144, n_cases)],
            "title": "违反治安管理",
            "procedure": "general",
            "source": "ex_officio",
            "is_major": "0",
            "emergency_start": "0",
            "registered_at": ts(cstart),
            "enforcement_power": "0",
            "updated_at": ts(cstart),
        }
    )
    cl = np.sort(rng.integers(0, 365 * 86400, n_clips))
    frames["clips"] = pd.DataFrame(
        {
            "clip_id": [f"K{i:010d}" for i in range(n_clips)],
            "device_sn": devices[rng.integers(0, 3500, n_clips)],
            "police_no": officers[rng.integers(0, 3000, n_clips)],
            "started_at": ts(cl),
            "ended_at": ts(cl + 300),
            "size_bytes": rng.integers(10**6, 10**9, n_clips).astype(str),
            "sha256": "0" * 64,
            "imported_at": ts(cl + 7200),
            "file_path": [f"v/{i}.mp4" for i in range(n_clips)],
            "incident_no": None,
            "case_no": None,
            "is_evidence": "0",
            "deleted_at": None,
            "updated_at": ts(cl + 7200),
        }
    )
    systems = {
        "org": ["org_units", "officers"],
        "cases": ["cases"],
        "dispatch": ["incidents"],
        "media": ["devices", "clips"],
    }
    for system, names in systems.items():
        with sqlite3.connect(out / f"{system}.sqlite") as con:
            for name in names:
                df = frames[name].reindex(columns=TABLES[name].column_names)
                con.execute(f"CREATE TABLE {name} ({', '.join(c + ' TEXT' for c in df.columns)})")
                rows = df.astype(object).where(df.notna(), None).itertuples(index=False, name=None)
                con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(df.columns))})", rows)
            for t in (
                "case_officers",
                "case_actions",
                "case_documents",
                "deliveries",
                "incident_officers",
                "interruption_reports",
                "device_assignments",
                "unit_admins",
                "access_log",
            ):
                if TABLES[t].system == system:
                    con.execute(f"CREATE TABLE {t} ({', '.join(c + ' TEXT' for c in TABLES[t].column_names)})")
        con.close()
    (out / "sources.yaml").write_text(
        "version: 1\nsystems:\n" + "".join(f'  {s}: {{url: "sqlite:///{s}.sqlite"}}\n' for s in systems),
        encoding="utf-8",
    )


def child(sources: str, url: str) -> None:
    """Run one load in this process and print its figures as JSON."""
    sys.path.insert(0, str(ROOT))
    from etl.pipeline import run

    t0 = time.perf_counter()
    result = run(Path(sources), warehouse=url, rules=False, progress=False)
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "peak_rss_mb": usage.ru_maxrss / 1024,
                "load_avg": os.getloadavg()[0],
                "tables": {
                    k: {"loaded": v.loaded, "read": v.read, "seconds": v.seconds} for k, v in result.tables.items()
                },
                "timings": result.timings,
            }
        )
    )


def measure(sources: Path, url: str, label: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(sources), url], cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"{label} load failed:\n{proc.stderr[-3000:]}")
    fig = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"\n== {label}: {fig['wall_s']:.1f} s wall, {fig['cpu_s']:.1f} s CPU (this process), "
        f"peak RSS {fig['peak_rss_mb']:.0f} MB, machine load average {fig['load_avg']:.1f} =="
    )
    print(f"{'table':<22}{'rows':>12}{'seconds':>10}{'rows/s':>12}")
    for name, t in fig["tables"].items():
        rate = t["read"] / t["seconds"] if t["seconds"] else 0
        print(f"{name:<22}{t['read']:>12,}{t['seconds']:>10.2f}{rate:>12,.0f}")
    print("phases:", ", ".join(f"{k} {v:.1f} s" for k, v in fig["timings"].items()))
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=["small", "city"], default="city")
    ap.add_argument("--only", choices=["sqlite", "postgres"])
    ap.add_argument("--rebuild", action="store_true", help="regenerate the cached sources")
    ap.add_argument("--child", nargs=2, metavar=("SOURCES", "URL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    sources = build_sources(args.scale, args.rebuild)
    if args.only in (None, "sqlite"):
        db = CACHE / f"warehouse-{args.scale}.sqlite"
        for f in CACHE.glob(db.name + "*"):
            f.unlink()
        fig = measure(sources, f"sqlite:///{db}", "SQLite")
        ok = fig["wall_s"] <= 60 and fig["peak_rss_mb"] <= 2048
        print(f"goal (<= 60 s, <= 2048 MB): {'met' if ok else 'NOT met'}")
    if args.only in (None, "postgres"):
        import sqlalchemy as sa

        name = f"avbench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            measure(sources, PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, "PostgreSQL")
        finally:
            with admin.connect() as c:
                c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.dispose()


if __name__ == "__main__":
    main()
