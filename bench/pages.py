"""Server-side render time of every dashboard page (AppTest) on a warehouse; prints the figures.

    .venv/bin/python bench/pages.py --warehouse sqlite:///data/city.sqlite [--user legal] [--user county]

Each page is rendered cold (empty query caches) and warm (second run); the target is ≤ 1 s cold on the
city-scale warehouse and ≤ 1.5 s on a 10x one (issue 18).  Detail views (event, case) are timed through the
query layer, as they sit behind the reason form, and so are widget states other than a page's first view
whose work could grow with the warehouse (cases with findings only, the device list and the access summary
over a year).  The users come from the warehouse's demo users file (or --users-file).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", required=True, help="SQLAlchemy URL of the warehouse")
    ap.add_argument("--user", action="append", help="demo user(s) to render as (default: legal and county)")
    ap.add_argument("--users-file", help="users file (default: the demo's, found from etl_runs)")
    args = ap.parse_args()
    os.environ["WAREHOUSE_URL"] = args.warehouse
    if args.users_file:
        os.environ["DASHBOARD_USERS_FILE"] = args.users_file

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from dashboard import auth, queries

    users = auth.load_users(auth.users_file(args.warehouse))
    app = str(ROOT / "dashboard" / "app.py")
    print(f"warehouse: {args.warehouse}")
    print(f"{'user':<10} {'page':<12} {'cold s':>8} {'warm s':>8}")
    worst = 0.0
    for username in args.user or ["legal", "county"]:
        ctx = auth.context_for(username, users, queries.org_units(args.warehouse))
        if ctx is None:
            print(f"{username}: not in the users file")
            continue
        at = AppTest.from_file(app, default_timeout=120)
        at.session_state["authentication_status"] = True
        at.session_state["username"] = username
        at.session_state["name"] = ctx.name
        at.run()
        for page in auth.ROLE_PAGES[ctx.role]:
            st.cache_data.clear()
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                at.switch_page(str(ROOT / "pages" / f"{page}.py")).run()
                times.append(time.perf_counter() - t0)
            status = "ERROR " + str(at.exception[0].message)[:60] if at.exception else ""
            worst = max(worst, times[0])
            print(f"{username:<10} {page:<12} {times[0]:>8.2f} {times[1]:>8.2f} {status}")
        # detail views behind the reason form, timed through the query layer
        ev = queries.events(args.warehouse, ctx.scope, None, max(queries.available_periods(args.warehouse)["month"]))
        if not ev.empty:
            t0 = time.perf_counter()
            queries.event_detail(args.warehouse, ctx.scope, str(ev["incident_no"].iloc[0]))
            print(f"{username:<10} {'event detail':<12} {time.perf_counter() - t0:>8.2f}")
        # the widgets' other states whose work could grow with the warehouse, cold (not rendered)
        year = max(queries.available_periods(args.warehouse)["year"])
        for label, query, extra in (
            ("cases only", queries.search_cases, ("", True)),  # 仅显示有问题的案件
            ("devices year", queries.devices, (year,)),  # the device list over a year
            ("access year", queries.access_summary, (year,)),  # 调阅审计's per-user table over a year
        ):
            st.cache_data.clear()
            t0 = time.perf_counter()
            query(args.warehouse, ctx.scope, None, *extra)
            print(f"{username:<10} {label:<12} {time.perf_counter() - t0:>8.2f}")
        cases = queries.search_cases(args.warehouse, ctx.scope, None, "")
        if not cases.empty:
            t0 = time.perf_counter()
            queries.case_detail(args.warehouse, ctx.scope, str(cases["case_no"].iloc[0]))
            print(f"{username:<10} {'case detail':<12} {time.perf_counter() - t0:>8.2f}")
        # one officer's record behind the reason form (民警执法记录档案): the first of the ranking
        ranking = queries.officer_ranking(args.warehouse, ctx.scope, None, year)
        if not ranking.empty:
            no = str(ranking["police_no"].iloc[0])
            t0 = time.perf_counter()
            queries.officer_record(args.warehouse, ctx.scope, None, no, year)
            queries.officer_trend(args.warehouse, ctx.scope, None, no, year)
            queries.officer_events(args.warehouse, ctx.scope, None, no, year)
            queries.officer_findings(args.warehouse, ctx.scope, None, no, year)
            queries.officer_access(args.warehouse, ctx.scope, None, no, year)
            queries.officer_access_months(args.warehouse, ctx.scope, None, no, year)
            print(f"{username:<10} {'officer':<12} {time.perf_counter() - t0:>8.2f}")
    print(f"slowest cold page: {worst:.2f} s (target ≤ 1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
