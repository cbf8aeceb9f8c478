"""Benchmark of the supervision record at city scale (prints figures, asserts nothing).

    .venv/bin/python bench/supervision.py --warehouse /tmp/city.sqlite [--verdicts 10000] [--year 2026]

Works on a copy of a SQLite warehouse built by ``etl run`` (the original is not touched) and prints, beside
the machine speed probe of bench/etl_full.py, the four speed goals of the supervision record:

1. the evaluation of a run (``etl.evaluation.evaluate``, every step: coverage, rules, metrics, scores, kept)
   without verdicts, then with ``--verdicts`` exempted findings stored (plain inserts into
   ``sup_finding_state`` and ``sup_reviews``): what applying them adds (goal ≤ 2 s);
2. one more verdict (``etl.supervision.actions.review``, audited, in its own transaction) with the rescore it
   triggers, and ``rescore`` alone on its fast path and on its full path (goal ≤ 1 s);
3. publishing a year's 12 months, 4 quarters and the year (``etl.supervision.publish.publish_many``; goal
   ≤ 10 s);
4. the review queue page (pages/review.py, rendered with AppTest as bench/pages.py does, cold and warm;
   goal ≤ 1 s);
5. spot-checks and rectification: drawing 10 objects per unit across all units (goal ≤ 3 s), recording one
   failed review, issuing a notice and printing it as .docx (goal ≤ 2 s), and the pages 待办 (goal ≤ 1 s),
   随机抽查 and 整改.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sqlite3
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench.etl_full import machine_probe  # noqa: E402
from etl.evaluation import evaluate  # noqa: E402
from etl.supervision.rescore import rescore  # noqa: E402
from etl.warehouse.db import make_engine, read_df  # noqa: E402
from etl.warehouse.schema import ensure_schema  # noqa: E402


def _copy(src: Path, dst: Path) -> None:
    s = sqlite3.connect(src)
    try:
        with sqlite3.connect(dst) as d:
            s.backup(d)
    finally:
        s.close()


def _evaluate(engine: sa.Engine) -> tuple[float, dict]:
    """One evaluation of the last run's data as that run (its id, date and integrity flag)."""
    with engine.begin() as conn:
        ev = read_df(conn, "SELECT run_id, as_of, integrity_checked FROM evaluation", parse_dates=["as_of"]).iloc[0]
        t = time.perf_counter()
        out = evaluate(
            conn,
            as_of=ev["as_of"].to_pydatetime(),
            integrity_checked=bool(ev["integrity_checked"]),
            run_id=int(ev["run_id"]),
        )
        return time.perf_counter() - t, out["timings"]


def _store_verdicts(engine: sa.Engine, n: int, seed: int) -> list[str]:
    """``n`` findings exempted at random (state and review rows, as review_many writes them)."""
    with engine.begin() as conn:
        keys = read_df(conn, "SELECT finding_key FROM findings ORDER BY finding_key")["finding_key"].tolist()
        chosen = sorted(random.Random(seed).sample(keys, min(n, len(keys))))
        now = datetime.now().replace(microsecond=0)
        conn.execute(
            sa.text(
                "INSERT INTO sup_finding_state (finding_key, state, category, reason, version, updated_by, updated_at)"
                " VALUES (:k, 'exempted', '数据错误', '基准测试', 1, 'legal', :t)"
            ),
            [{"k": k, "t": now} for k in chosen],
        )
        conn.execute(
            sa.text(
                "INSERT INTO sup_reviews (finding_key, verdict, category, reason, by_user, role, at, source)"
                " VALUES (:k, 'exempt', '数据错误', '基准测试', 'legal', 'legal', :t, 'review')"
            ),
            [{"k": k, "t": now} for k in chosen],
        )
    return chosen


def _print_eval(label: str, sec: float, timings: dict) -> None:
    steps = "  ".join(f"{k} {v:.2f}" for k, v in timings.items())
    print(f"  {label:<22} {sec:7.2f} s   ({steps})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", required=True, help="a city warehouse (SQLite file) built by etl run")
    ap.add_argument("--verdicts", type=int, default=10_000)
    ap.add_argument("--year", default="2026")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--keep", action="store_true", help="keep the working copy (printed)")
    args = ap.parse_args()
    src = Path(args.warehouse.removeprefix("sqlite:///"))
    work = Path(tempfile.mkdtemp(prefix="bench_sup_")) / "w.sqlite"
    t = time.perf_counter()
    _copy(src, work)
    url = f"sqlite:///{work}"
    print(f"warehouse: {src} (working copy {work}, {time.perf_counter() - t:.1f} s)")
    machine_probe("before")
    engine = make_engine(url)
    with engine.begin() as conn:
        ensure_schema(conn)  # a warehouse built before the tables of this version: as the next run would

    print("1. applying stored verdicts in the evaluation of a run")
    sec0, tim0 = _evaluate(engine)
    _print_eval("no verdicts", sec0, tim0)
    chosen = _store_verdicts(engine, args.verdicts, args.seed)
    sec1, tim1 = _evaluate(engine)
    _print_eval(f"{len(chosen):,} verdicts", sec1, tim1)
    vsteps = ("metrics", "scores", "kept")
    added = sum(tim1.get(k, 0) for k in vsteps) - sum(tim0.get(k, 0) for k in vsteps)
    print(f"  added by the verdicts: {sec1 - sec0:+.2f} s whole evaluation, {added:+.2f} s metrics+scores+kept")

    print("2. one more verdict (with the verdicts above stored)")
    from etl.supervision.actions import review
    from etl.users import resolve

    legal = resolve("legal", engine)
    with engine.connect() as conn:
        keys = read_df(conn, "SELECT finding_key, rule_id FROM findings ORDER BY finding_key")
    taken = set(chosen)
    rng = random.Random(args.seed + 1)
    free = [k for k in keys["finding_key"] if k not in taken]
    for rule in ("AV-NONE", "UPLOAD-LATE", "DOC-MISSING"):
        cand = [k for k in keys.loc[keys["rule_id"] == rule, "finding_key"] if k not in taken]
        if not cand:
            continue
        key = rng.choice(cand)
        t = time.perf_counter()
        review(engine, legal, key, "exempt", reason="基准测试", category="数据错误")
        print(f"  review (exempt {rule}, audited, rescored, committed): {time.perf_counter() - t:6.2f} s")
        taken.add(key)
    with engine.begin() as conn:
        key = rng.choice([k for k in free if k not in taken])
        conn.execute(
            sa.text(
                "INSERT INTO sup_finding_state (finding_key, state, reason, version, updated_by, updated_at)"
                " VALUES (:k, 'exempted', '基准测试', 1, 'legal', :t)"
            ),
            {"k": key, "t": datetime.now().replace(microsecond=0)},
        )
        out = rescore(conn)
        print(f"  rescore, fast path: {out['seconds']:6.2f} s ({out['path']}, {out.get('units', 0)} units scored)")
        out = rescore(conn, full=True)
        print(f"  rescore, full path: {out['seconds']:6.2f} s (the reference; the only path before)")

    print(f"3. publishing {args.year}: 12 months + 4 quarters + the year")
    from etl.supervision.publish import publish_many

    periods = [f"{args.year}-{m:02d}" for m in range(1, 13)] + [f"{args.year}-Q{q}" for q in range(1, 5)]
    periods.append(args.year)
    with engine.connect() as conn:
        have = set(read_df(conn, "SELECT DISTINCT period FROM unit_scores")["period"])
    periods = [p for p in periods if p in have]
    t = time.perf_counter()
    try:
        done = publish_many(engine, legal, periods, reason="基准测试：发布全年")
        print(f"  {len(done)} periods published: {time.perf_counter() - t:6.2f} s")
    except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
        print(f"  publish failed after {time.perf_counter() - t:.2f} s: {exc}")

    print("4. the review queue page (pages/review.py, AppTest)")
    engine.dispose()
    _page(url, "legal", "review.py")

    print("5. spot-checks and rectification (issue 14)")
    engine = make_engine(url)
    _spot_and_rectify(engine, legal, Path(str(work) + ".notice.docx"))
    engine.dispose()
    for user, page in (("legal", "todo.py"), ("station", "todo.py"), ("legal", "spotcheck.py")):
        _page(url, user, page)
    _page(url, "legal", "rectification.py")
    machine_probe("after")
    if not args.keep:
        work.unlink(missing_ok=True)
        for extra in ("-wal", "-shm"):
            Path(str(work) + extra).unlink(missing_ok=True)
    return 0


def _spot_and_rectify(engine: sa.Engine, legal, docx: Path) -> None:  # noqa: ANN001
    """Draw 10 events and 10 cases per unit of the last data month (goal ≤ 3 s), record one failure (its
    SPOT-CHECK finding and the rescore), issue a notice for a unit's findings of that month, print it (goal ≤ 2 s)."""
    from etl.supervision import rectify, spotcheck

    with engine.connect() as conn:
        month = read_df(conn, "SELECT MAX(month) AS m FROM findings WHERE month IS NOT NULL")["m"].iloc[0]
    for kind in ("events", "cases"):
        t = time.perf_counter()
        drawn = spotcheck.draw(engine, legal, period=month, kind=kind, per_unit=10, seed=2026, reason="基准测试")
        print(
            f"  draw {kind} {month}, 10 per unit: {time.perf_counter() - t:6.2f} s "
            f"({drawn['drawn']} of {drawn['population']} objects)"
        )
    with engine.connect() as conn:
        item = read_df(
            conn,
            "SELECT campaign_id, object_key, unit_code FROM sup_spotcheck_items ORDER BY campaign_id, draw_order",
        ).iloc[0]
    t = time.perf_counter()
    out = spotcheck.record(
        engine, legal, int(item["campaign_id"]), str(item["object_key"]), fail=["16.2"], reason="基准测试"
    )
    print(f"  record one failure (SPOT-CHECK finding + rescore): {time.perf_counter() - t:6.2f} s -> {out['verdict']}")
    t = time.perf_counter()
    notice = rectify.issue(engine, legal, str(item["unit_code"]), period=month, text="基准测试", reason="基准测试")
    print(f"  issue a notice ({notice['findings']} findings): {time.perf_counter() - t:6.2f} s")
    t = time.perf_counter()
    rectify.print_notice(engine, legal, int(notice["notice_id"]), docx, "基准测试")
    print(f"  print the notice (.docx, {docx.stat().st_size} bytes): {time.perf_counter() - t:6.2f} s")
    docx.unlink(missing_ok=True)


def _page(url: str, username: str, page: str) -> None:
    os.environ["WAREHOUSE_URL"] = url
    logging.disable(logging.WARNING)  # AppTest outside a server warns on every cached read
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from dashboard import auth, queries

    users = auth.load_users(auth.users_file(url))
    ctx = auth.context_for(username, users, queries.org_units(url))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = ctx.name
    at.run()
    st.cache_data.clear()
    for label in ("cold", "warm"):
        t = time.perf_counter()
        at.switch_page(str(ROOT / "pages" / page)).run()
        status = " ERROR " + str(at.exception[0].message)[:80] if at.exception else ""
        print(f"  {username} {page}, {label}: {time.perf_counter() - t:6.2f} s{status}")
    pd.set_option("display.width", 120)


if __name__ == "__main__":
    sys.exit(main())
