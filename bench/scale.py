"""Scale benchmark (issue 18, part 4): 1x, 3x and 10x city on one PostgreSQL warehouse (prints figures).

    .venv/bin/python bench/scale.py [--factors 1,3,10] [--base city|small] [--dry-run] [--keep] [--one-load]
                                    [--pg-admin URL] [--min-free-gb 1.5] [--no-pages] [--no-daily]

For each factor F (in increasing order):

1. the demo without media, cached in ``bench/.cache/scale_F`` (``--base small``: ``scale_small_F``): 1x is
   ``etl demo --scale city``, F > 1 ``etl demo --scale province --cities F`` (F cities of city scale, generated
   city by city); reused when the cache's stamp names the same command;
2. a fresh PostgreSQL database ``avsup_scale_F`` and the full ``etl run`` into it in a child process: wall
   time, time per on-site event (wall / on-site events of the warehouse), the child's peak RSS (VmHWM), the
   warehouse size (``pg_database_size``);
3. page timings on that warehouse: ``bench/pages.py`` (server-side render, users ``legal`` and ``county``:
   ``legal`` sees the whole province), the slowest cold page;
4. the daily incremental run: ``bench/etl_daily.py``'s machinery (a copy of the sources cut back to the day
   before their latest day, loaded into a fresh database ``avsup_scale_F_daily``, then the full sources put
   back and run again: the daily run's wall time and RSS).

Before each factor it estimates whether the factor fits this machine: the ETL's peak RSS as the previous
factor's scaled linearly (the ETL does not yet process by partition), and the day-before edit's (whole CSV
tables in pandas) against the memory available now; the demo, its copy and the warehouse against the free
disk.  If not, it prints where it stops and why.  While a child runs, a watchdog ends it when the machine's
available memory falls below ``--min-free-gb``.  At the end: the goals of the issue, met or not, from the
figures; ``bench/scale.json`` (raw figures) and ``bench/scale.png`` (a chart: plotly -> HTML with plotly.js
inline -> screenshot by headless Chromium).  ``--base small`` (factors of the small demo, a minute or two)
writes ``bench/.cache/scale_small.json`` and ``.png`` instead, so that a trial never replaces the figures.

``--one-load`` (for 10x within a working session): one full load per factor instead of two.  Step 2 is then the
initial load of step 4's day-before copy (every row but the latest day's), step 4's daily run follows on the
same warehouse, and the pages and the warehouse size are taken after it (the whole data).

Databases are dropped after their figures unless ``--keep``; ``--dry-run`` prints the plan and the estimates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import etl_daily as daily  # noqa: E402
from bench.etl_full import _print_run, machine_probe  # noqa: E402
from etl.sources import config as config_mod  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
PG_ADMIN = os.environ.get("SCALE_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CHROMIUM = "/usr/bin/chromium"  # as tests/test_browser.py launches it
GIB = 1024**3
# Priors for the first factor, before anything was measured: the ETL's peak RSS per city-sized unit of data
# (ARCHITECTURE.md: the bench allows 3 GB at city scale) and the demo's size (a city without media: ~0.95 GB).
PRIOR = {"city": {"rss": 3.0 * GIB, "demo": 1.0 * GIB}, "small": {"rss": 0.6 * GIB, "demo": 0.02 * GIB}}
EDIT_PER_CSV_BYTE = 7  # the day-before edit holds a whole CSV table as text frame, string and bytes (measured ~5x)
WAREHOUSE_PER_DEMO_BYTE = 3.0  # prior: warehouse size / demo size, until a factor measured it
GOALS = {"per_event": 1.25, "rss_ratio": 1.5, "rss_abs_mb": 4096, "daily_ratio": 10.0, "page_s": 1.5}


@dataclass
class Figures:
    factor: int
    base: str
    cities: int
    demo: str = ""
    demo_bytes: int = 0
    demo_seconds: float | None = None
    onsite_events: int | None = None
    full_wall_s: float | None = None
    full_cpu_s: float | None = None
    per_event_ms: float | None = None
    peak_rss_mb: float | None = None
    warehouse_bytes: int | None = None
    findings: int | None = None
    slowest_page_s: float | None = None
    pages: list[dict] = field(default_factory=list)
    daily_day: str | None = None
    initial_wall_s: float | None = None
    daily_wall_s: float | None = None
    daily_rss_mb: float | None = None
    probe_s: float | None = None
    stopped: str | None = None
    one_load: bool = False  # the full run was the initial load of the day before (--one-load)


# --- machine ---------------------------------------------------------------------------------------------


def meminfo() -> dict[str, int]:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        out[key] = int(rest.split()[0]) * 1024
    return out


def available_memory() -> int:
    return meminfo()["MemAvailable"]


def free_disk(path: Path) -> int:
    while not path.exists():
        path = path.parent
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def pg_data_dir(admin: str) -> Path | None:
    """Where the PostgreSQL server keeps its data, when it is on this machine (for the disk estimate)."""
    try:
        eng = sa.create_engine(admin)
        try:
            with eng.connect() as c:
                path = Path(c.exec_driver_sql("SHOW data_directory").scalar())
        finally:
            eng.dispose()
    except sa.exc.DBAPIError:
        return None
    return path if path.exists() else None


# --- the demo --------------------------------------------------------------------------------------------


def demo_dir(base: str, factor: int) -> Path:
    return CACHE / (f"scale_{factor}" if base == "city" else f"scale_{base}_{factor}")


def demo_command(base: str, factor: int, out: Path) -> list[str]:
    args = [sys.executable, "-m", "etl", "demo", "--out", str(out), "--no-media"]
    if factor == 1:
        return [*args, "--scale", base]
    return [*args, "--scale", "province", "--cities", str(factor), "--base", base]


def demo_stamp(cmd: list[str]) -> str:
    return " ".join([*cmd[2:4], *cmd[6:]])  # the command without the interpreter and the folder


def cached_demo(base: str, factor: int) -> Path | None:
    out = demo_dir(base, factor)
    stamp = out / ".scale-demo"
    ok = (out / "sources.yaml").exists() and stamp.exists()
    return out if ok and stamp.read_text() == demo_stamp(demo_command(base, factor, out)) else None


def make_demo(base: str, factor: int, guard: Guard) -> tuple[Path, float]:
    out = demo_dir(base, factor)
    cmd = demo_command(base, factor, out)
    (out / ".scale-demo").unlink(missing_ok=True)
    t = time.perf_counter()
    code, err, why = guard.run(cmd)
    if code != 0:
        raise Stop(f"demo of {factor}x failed" + (f": {why}" if why else f":\n{err[-2000:]}"))
    (out / ".scale-demo").write_text(demo_stamp(cmd))
    return out, time.perf_counter() - t


# --- children under a memory watchdog --------------------------------------------------------------------


class Stop(Exception):  # noqa: N818 - the reason a factor (and the ones above it) cannot be measured
    pass


class Guard:
    """Runs child processes and ends one (its whole process group) when available memory falls below a floor."""

    def __init__(self, min_free: int):
        self.min_free = min_free

    def run(self, cmd: list[str], stdout: int | None = None) -> tuple[int, str, str | None]:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True, start_new_session=True)
        why: list[str] = []
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.5):
                avail = available_memory()
                if avail < self.min_free:
                    why.append(f"available memory fell to {avail / GIB:.1f} GiB (floor {self.min_free / GIB:.1f} GiB)")
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, 9)
                    return

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        out, err = proc.communicate()
        done.set()
        t.join()
        self.stdout = out or ""
        return proc.returncode, err or "", (why[0] if why else None)

    def etl_run(self, label: str, sources: Path, url: str, work: Path):  # noqa: ANN201
        """``pipeline.run`` in a child (``bench/etl_daily.py --child``): (RunResult, wall / cpu / rss_mb)."""
        out = work / "run.pickle"
        code, err, why = self.run([sys.executable, daily.__file__, "--child", str(sources), url, str(out)])
        if code != 0:
            raise Stop(f"{label}: " + (why or f"failed:\n{err[-3000:]}"))
        result, fig = pickle.loads(out.read_bytes())
        out.unlink()
        print()
        _print_run(label, result, fig["wall"])
        print(f"  CPU {fig['cpu']:.1f} s, peak RSS {fig['rss_mb']:,.0f} MB, load average {fig['load_avg']:.1f}")
        return result, fig


# --- PostgreSQL ------------------------------------------------------------------------------------------


def db_url(admin: str, name: str) -> str:
    return admin.rsplit("/", 1)[0] + "/" + name


def recreate_db(admin: str, name: str) -> str:
    eng = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            c.exec_driver_sql(f"CREATE DATABASE {name}")
    finally:
        eng.dispose()
    return db_url(admin, name)


def drop_db(admin: str, name: str) -> None:
    eng = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        eng.dispose()


def scalar(url: str, sql: str) -> int:
    eng = sa.create_engine(url)
    try:
        with eng.connect() as c:
            return int(c.exec_driver_sql(sql).scalar() or 0)
    finally:
        eng.dispose()


# --- one factor ------------------------------------------------------------------------------------------


def estimate(base: str, factor: int, done: list[Figures], admin_data: Path | None) -> list[str]:
    """Why ``factor`` would not fit this machine now (empty: it fits), from the previous factor's figures."""
    prev = next((f for f in reversed(done) if f.peak_rss_mb is not None), None)
    ratio = factor / prev.factor if prev else factor
    rss = prev.peak_rss_mb * 1024**2 * ratio if prev else PRIOR[base]["rss"] * factor
    cached = cached_demo(base, factor)
    demo_bytes = du(cached) if cached else int((prev.demo_bytes * ratio) if prev else PRIOR[base]["demo"] * factor)
    biggest_csv = max((p.stat().st_size for p in cached.rglob("*.csv")), default=0) if cached else demo_bytes // 8
    edit = EDIT_PER_CSV_BYTE * biggest_csv
    wh = prev.warehouse_bytes * ratio if prev and prev.warehouse_bytes else WAREHOUSE_PER_DEMO_BYTE * demo_bytes
    avail = available_memory()
    print(
        f"estimate for {factor}x: ETL peak RSS ~{rss / GIB:.1f} GiB"
        + (f" ({prev.peak_rss_mb / 1024:.1f} GiB at {prev.factor}x, scaled linearly)" if prev else " (prior)")
        + f", day-before edit ~{edit / GIB:.1f} GiB, memory available {avail / GIB:.1f} GiB; "
        f"demo {demo_bytes / GIB:.1f} GiB ({'cached' if cached else 'to generate'}), warehouse ~{wh / GIB:.1f} GiB"
    )
    reasons = []
    if rss > avail:
        reasons.append(f"the ETL would need ~{rss / GIB:.1f} GiB, {avail / GIB:.1f} GiB are available")
    if edit > avail:
        reasons.append(f"the day-before edit would need ~{edit / GIB:.1f} GiB, {avail / GIB:.1f} GiB are available")
    need_work = (0 if cached else demo_bytes) + demo_bytes  # the demo and the daily run's copy of it
    need_pg = wh  # one warehouse at a time: the full run's is dropped before the daily run's is made
    work_free = free_disk(CACHE)
    if admin_data is not None and os.stat(admin_data).st_dev == os.stat(CACHE if CACHE.exists() else ROOT).st_dev:
        if need_work + need_pg > work_free:
            reasons.append(f"disk: ~{(need_work + need_pg) / GIB:.0f} GiB needed, {work_free / GIB:.0f} GiB free")
    else:
        if need_work > work_free:
            reasons.append(f"disk ({CACHE}): ~{need_work / GIB:.0f} GiB needed, {work_free / GIB:.0f} GiB free")
        if admin_data is not None and need_pg > free_disk(admin_data):
            reasons.append(
                f"disk ({admin_data}): ~{need_pg / GIB:.0f} GiB needed, {free_disk(admin_data) / GIB:.0f} free"
            )
    return reasons


def pages(url: str, guard: Guard, users: Path | None = None) -> tuple[float | None, list[dict]]:
    """``bench/pages.py`` on the warehouse: (slowest cold page, rows user/page/cold/warm).  ``users``: the demo's
    users file, when the warehouse was loaded from a copy of the sources (the copy has none)."""
    cmd = [sys.executable, str(ROOT / "bench" / "pages.py"), "--warehouse", url]
    code, err, why = guard.run([*cmd, "--users-file", str(users)] if users else cmd, stdout=subprocess.PIPE)
    text = guard.stdout
    if code != 0:
        raise Stop("pages: " + (why or f"failed:\n{err[-2000:]}"))
    rows = []
    for line in text.splitlines():
        m = re.match(r"^(\S+)\s+(.+?)\s+(\d+\.\d+)(?:\s+(\d+\.\d+))?\s*(ERROR.*)?$", line)
        if m and not line.startswith(("warehouse", "slowest")):
            rows.append(
                {
                    "user": m[1],
                    "page": m[2].strip(),
                    "cold_s": float(m[3]),
                    "warm_s": float(m[4]) if m[4] else None,
                    "error": m[5],
                }
            )
    print("\n[pages]\n" + text.rstrip())
    slowest = re.search(r"slowest cold page: (\d+\.\d+) s", text)
    return (float(slowest[1]) if slowest else None), rows


def measure(
    fig: Figures, admin: str, guard: Guard, keep: bool, with_pages: bool, with_daily: bool, one_load: bool = False
) -> None:
    src = cached_demo(fig.base, fig.factor)
    if src is None:
        print(f"\ngenerating the {fig.factor}x demo into {demo_dir(fig.base, fig.factor)} ...")
        src, fig.demo_seconds = make_demo(fig.base, fig.factor, guard)
        print(f"demo generated in {fig.demo_seconds:.0f} s")
    fig.demo, fig.demo_bytes = str(src), du(src)
    name = f"avsup_scale_{fig.factor}" if fig.base == "city" else f"avsup_scale_{fig.base}_{fig.factor}"
    with tempfile.TemporaryDirectory(prefix="scale_", dir=CACHE) as tmp:
        work = Path(tmp)
        if one_load:
            _one_load(fig, src, work, admin, name, guard, keep, with_pages)
            return
        url = recreate_db(admin, name)
        try:
            print(f"\nwarehouse: {url.split('@')[-1]}")
            fig.probe_s = machine_probe(f"before {fig.factor}x")
            result, run = guard.etl_run(f"full run {fig.factor}x", src / "sources.yaml", url, work)
            _full_figures(fig, result, run, url)
            fig.warehouse_bytes = scalar(url, "SELECT pg_database_size(current_database())")
            print(f"  warehouse {fig.warehouse_bytes / GIB:.2f} GiB")
            if with_pages:
                fig.slowest_page_s, fig.pages = pages(url, guard)
        finally:
            if not keep:
                drop_db(admin, name)
        if with_daily:
            try:
                daily_run(fig, src, work / "daily", admin, name + "_daily", guard)
            finally:
                if not keep:
                    drop_db(admin, name + "_daily")


def _full_figures(fig: Figures, result, run: dict, url: str) -> None:  # noqa: ANN001 - a RunResult
    fig.full_wall_s, fig.full_cpu_s, fig.peak_rss_mb = run["wall"], run["cpu"], run["rss_mb"]
    fig.findings = sum(int(v) for v in ((result.rules or {}).get("findings") or {}).values())
    fig.onsite_events = scalar(url, "SELECT COUNT(*) FROM event_coverage")
    fig.per_event_ms = 1000 * fig.full_wall_s / max(fig.onsite_events, 1)
    print(f"  on-site events {fig.onsite_events:,}: {fig.per_event_ms:.2f} ms per event")


def _one_load(
    fig: Figures, src: Path, work: Path, admin: str, name: str, guard: Guard, keep: bool, pages_: bool
) -> None:
    """``--one-load``: one full load per factor.  The full run is the initial load of the day before (every row
    but the last day's, ~0.2 % fewer events), the daily run follows on the same warehouse, the pages and the warehouse
    size are taken after it (the whole data).  Half the time of a full run plus a separate day-before load."""
    fig.one_load = True
    fig.probe_s = machine_probe(f"before {fig.factor}x")
    try:
        url = daily_run(fig, src, work / "daily", admin, name, guard, initial_is_full=True)
        fig.warehouse_bytes = scalar(url, "SELECT pg_database_size(current_database())")
        print(f"  warehouse {fig.warehouse_bytes / GIB:.2f} GiB")
        if pages_:
            fig.slowest_page_s, fig.pages = pages(url, guard, src / "users.yaml")
    finally:
        if not keep:
            drop_db(admin, name)


def daily_run(
    fig: Figures, src: Path, work: Path, admin: str, name: str, guard: Guard, initial_is_full: bool = False
) -> str:
    """``bench/etl_daily.py``'s day before: copy, cut back, initial load, full sources back, the daily run.
    ``initial_is_full``: the initial load's figures are the factor's full-run figures (``--one-load``).
    Returns the warehouse URL."""
    work.mkdir()
    cfg_src = config_mod.load(src / "sources.yaml")
    paths = daily.source_paths(cfg_src)
    t = time.perf_counter()
    daily.copy_sources(src, work, paths, cfg_src.media_root)
    cfg = config_mod.load(work / "sources.yaml")
    day = daily.latest_day(cfg)
    cutoff = datetime.combine(day, datetime.min.time())
    report = daily.day_before(cfg, cutoff)
    removed = sum(e.removed for e in report.values())
    print(f"\nday before {day}: {removed:,} rows removed, copy and edit {time.perf_counter() - t:.0f} s")
    url = recreate_db(admin, name)
    result, init = guard.etl_run(f"initial load {fig.factor}x (day before {day})", work / "sources.yaml", url, work)
    if initial_is_full:
        _full_figures(fig, result, init, url)
    daily.copy_sources(src, work, paths, cfg_src.media_root)
    _result, run = guard.etl_run(f"daily incremental run {fig.factor}x ({day})", work / "sources.yaml", url, work)
    fig.daily_day, fig.initial_wall_s = str(day), init["wall"]
    fig.daily_wall_s, fig.daily_rss_mb = run["wall"], run["rss_mb"]
    return url


# --- goals, JSON, chart ----------------------------------------------------------------------------------


def goals(figs: list[Figures]) -> list[tuple[str, str, str]]:
    """(goal, met / NOT met / not measured, the figures) for the issue's goals: 10x against 1x."""
    one = next((f for f in figs if f.factor == 1 and f.full_wall_s is not None), None)
    top = max((f for f in figs if f.full_wall_s is not None and f.factor > 1), key=lambda f: f.factor, default=None)
    note = ""
    if top is not None and top.factor != 10:
        note = f" [at {top.factor}x: the goal names 10x]"
    if figs and figs[0].base != "city":
        note += f" [{figs[0].base} base: not the issue's city-scale figures]"
    out = []

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("met" if ok else "NOT met")

    k = top.factor if top else 10
    if one and top and one.per_event_ms and top.per_event_ms:
        lim = GOALS["per_event"] * one.per_event_ms
        out.append(
            (
                f"time per on-site event at {k}x <= 1.25 x 1x",
                verdict(top.per_event_ms <= lim),
                f"{top.per_event_ms:.2f} ms vs limit {lim:.2f} ms (1x {one.per_event_ms:.2f} ms){note}",
            )
        )
    else:
        out.append(("time per on-site event at 10x <= 1.25 x 1x", verdict(None), "needs 1x and a larger factor"))
    if one and top and one.peak_rss_mb and top.peak_rss_mb:
        lim = min(GOALS["rss_ratio"] * one.peak_rss_mb, GOALS["rss_abs_mb"])
        out.append(
            (
                f"peak RSS at {k}x <= 1.5 x 1x and <= 4 GB",
                verdict(top.peak_rss_mb <= lim),
                f"{top.peak_rss_mb:,.0f} MB vs limit {lim:,.0f} MB (1x {one.peak_rss_mb:,.0f} MB){note}",
            )
        )
    else:
        out.append(("peak RSS at 10x <= 1.5 x 1x and <= 4 GB", verdict(None), "needs 1x and a larger factor"))
    if one and top and one.daily_wall_s and top.daily_wall_s:
        lim = GOALS["daily_ratio"] * one.daily_wall_s * (k / 10)
        out.append(
            (
                f"daily incremental at {k}x <= {k} x 1x" if k != 10 else "daily incremental at 10x <= 10 x 1x",
                verdict(top.daily_wall_s <= lim),
                f"{top.daily_wall_s:.1f} s vs limit {lim:.1f} s (1x {one.daily_wall_s:.1f} s){note}",
            )
        )
    else:
        out.append(("daily incremental at 10x <= 10 x 1x", verdict(None), "needs the daily run at 1x and above"))
    if top and top.slowest_page_s is not None:
        out.append(
            (
                f"pages on the {k}x warehouse <= 1.5 s",
                verdict(top.slowest_page_s <= GOALS["page_s"]),
                f"slowest cold page {top.slowest_page_s:.2f} s{note}",
            )
        )
    else:
        out.append(("pages on the 10x warehouse <= 1.5 s", verdict(None), "needs page timings above 1x"))
    return out


def print_table(figs: list[Figures]) -> None:
    print(
        f"\n{'factor':>6} {'cities':>6} {'on-site':>10} {'full s':>8} {'ms/event':>9} {'peak RSS MB':>12} "
        f"{'warehouse GiB':>14} {'daily s':>8} {'page s':>7}  stopped"
    )

    def f(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    for x in figs:
        print(
            f"{x.factor:>5}x {x.cities:>6} {f(x.onsite_events, ','):>10} {f(x.full_wall_s, '.1f'):>8} "
            f"{f(x.per_event_ms, '.2f'):>9} {f(x.peak_rss_mb, ',.0f'):>12} "
            f"{f(None if x.warehouse_bytes is None else x.warehouse_bytes / GIB, '.2f'):>14} "
            f"{f(x.daily_wall_s, '.1f'):>8} {f(x.slowest_page_s, '.2f'):>7}  {x.stopped or ''}"
        )
    if any(x.one_load for x in figs):
        print("(--one-load: the full run is the initial load of the day before; the daily run followed it)")


def chart(figs: list[Figures], png: Path) -> None:
    """The figures per factor as a plotly chart, screenshot by headless Chromium into ``png``."""
    import plotly.graph_objects as go
    from playwright.sync_api import sync_playwright
    from plotly.subplots import make_subplots

    done = [f for f in figs if f.full_wall_s is not None]
    one = next((f for f in done if f.factor == 1), None)
    xs = [f"{f.factor}×" for f in done]
    panels = [
        ("全量运行时间（秒）", [f.full_wall_s for f in done], None),
        ("每起现场执法耗时（毫秒）", [f.per_event_ms for f in done], one and GOALS["per_event"] * one.per_event_ms),
        (
            "峰值内存 RSS（MB）",
            [f.peak_rss_mb for f in done],
            one and min(GOALS["rss_ratio"] * one.peak_rss_mb, GOALS["rss_abs_mb"]),
        ),
        ("仓库大小（GiB）", [None if f.warehouse_bytes is None else f.warehouse_bytes / GIB for f in done], None),
        ("每日增量运行（秒）", [f.daily_wall_s for f in done], None),
        ("最慢页面冷启动（秒）", [f.slowest_page_s for f in done], GOALS["page_s"]),
    ]
    fig = make_subplots(rows=2, cols=3, subplot_titles=[p[0] for p in panels], vertical_spacing=0.16)
    for i, (_title, ys, goal) in enumerate(panels):
        r, c = i // 3 + 1, i % 3 + 1
        text = ["" if y is None else (f"{y:,.0f}" if y >= 100 else f"{y:.2f}") for y in ys]
        fig.add_trace(go.Bar(x=xs, y=ys, text=text, textposition="outside", marker_color="#2f6db5"), row=r, col=c)
        if goal:
            fig.add_hline(y=goal, line_dash="dash", line_color="#c0392b", row=r, col=c)
        top = max(
            [y for y in ys if y is not None]
            + [goal or 0]
            + ([one.daily_wall_s * done[-1].factor] if i == 4 and one and one.daily_wall_s else [])
        )
        fig.update_yaxes(range=[0, top * 1.18 or 1], row=r, col=c)
        if i == 4 and one and one.daily_wall_s:  # the daily goal: proportional to the factor (10x at 10x)
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[one.daily_wall_s * f.factor for f in done],
                    mode="lines",
                    line={"dash": "dash", "color": "#c0392b"},
                ),
                row=r,
                col=c,
            )
    base = figs[0].base if figs else "city"
    stops = "；".join(f"{f.factor}× 未测：{f.stopped}" for f in figs if f.stopped)
    title = f"规模基准（每个倍数 = 城市数 × {base} 规模，PostgreSQL；红色虚线 = 议题目标）" + (
        f"<br><sub>{stops}</sub>" if stops else ""
    )
    fig.update_layout(
        title=title,
        showlegend=False,
        width=1400,
        height=820,
        font={"family": "Noto Sans CJK SC, Noto Serif CJK SC, sans-serif", "size": 14},
        margin={"t": 110},
    )
    html = png.with_suffix(".html")
    html.write_text(fig.to_html(include_plotlyjs=True, full_html=True), encoding="utf-8")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 820})
        page.goto(html.resolve().as_uri())
        page.wait_for_selector(".main-svg")
        page.screenshot(path=str(png), full_page=True)
        browser.close()
    html.unlink()


# --- main ------------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--factors", default="1,3,10", help="comma-separated factors (default 1,3,10)")
    ap.add_argument("--base", choices=["city", "small"], default="city", help="scale of 1x (small: a quick trial)")
    ap.add_argument("--pg-admin", default=PG_ADMIN, help="admin URL of the PostgreSQL server")
    ap.add_argument("--min-free-gb", type=float, default=1.5, help="end a child when available memory falls below")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and the estimates, run nothing")
    ap.add_argument("--keep", action="store_true", help="keep the databases")
    ap.add_argument("--no-pages", action="store_true", help="skip the page timings")
    ap.add_argument("--no-daily", action="store_true", help="skip the daily incremental run")
    ap.add_argument(
        "--one-load",
        action="store_true",
        help="one full load per factor: the full run is the day before's initial load, the daily run follows it",
    )
    ap.add_argument("--json", type=Path, default=None, help="raw figures (default bench/scale.json)")
    ap.add_argument("--png", type=Path, default=None, help="chart (default bench/scale.png)")
    ap.add_argument("--replot", action="store_true", help="only draw the chart again from the JSON figures")
    args = ap.parse_args()
    factors = sorted({int(x) for x in args.factors.split(",") if x.strip()})
    if not factors or factors[0] < 1 or factors[-1] > 11:
        ap.error("factors are 1 to 11 (cities of the province demo)")
    trial = args.base != "city"
    out_json = args.json or (CACHE / "scale_small.json" if trial else ROOT / "bench" / "scale.json")
    out_png = args.png or (CACHE / "scale_small.png" if trial else ROOT / "bench" / "scale.png")
    if args.replot:
        saved = json.loads(out_json.read_text(encoding="utf-8"))
        chart([Figures(**f) for f in saved["figures"]], out_png)
        print(f"chart: {out_png}")
        return 0
    CACHE.mkdir(parents=True, exist_ok=True)
    guard = Guard(int(args.min_free_gb * GIB))
    mem = meminfo()
    data_dir = pg_data_dir(args.pg_admin)
    print(
        f"machine: {os.cpu_count()} cores, {mem['MemTotal'] / GIB:.1f} GiB RAM ({mem['MemAvailable'] / GIB:.1f} "
        f"available), disk free {free_disk(CACHE) / GIB:.0f} GiB ({CACHE}); PostgreSQL "
        f"{args.pg_admin.split('@')[-1]}, data {data_dir or 'not on this machine'}"
    )
    print(
        f"factors {', '.join(f'{f}x' for f in factors)} of the {args.base} demo; watchdog floor {args.min_free_gb} GiB"
    )
    figs: list[Figures] = []
    stopped = None
    for factor in factors:
        fig = Figures(factor, args.base, factor)
        figs.append(fig)
        if stopped:
            fig.stopped = f"not run: {stopped}"
            continue
        cached = cached_demo(args.base, factor)
        print(f"\n=== {factor}x: demo {' '.join(demo_command(args.base, factor, demo_dir(args.base, factor))[2:])}")
        print(f"    cache {demo_dir(args.base, factor)} ({'cached' if cached else 'to generate'})")
        reasons = estimate(args.base, factor, figs[:-1], data_dir)
        if reasons:
            stopped = f"{factor}x does not fit: " + "; ".join(reasons)
            fig.stopped = stopped
            print(f"STOP at {factor}x: {'; '.join(reasons)}")
            continue
        if args.dry_run:
            continue
        try:
            measure(fig, args.pg_admin, guard, args.keep, not args.no_pages, not args.no_daily, args.one_load)
        except Stop as exc:
            stopped = f"{factor}x stopped: {exc}"
            fig.stopped = stopped
            print(f"STOP at {factor}x: {exc}")
    if args.dry_run:
        print("\ndry run: nothing generated or measured")
        return 0
    print_table(figs)
    print("\ngoals (issue 18):")
    results = goals(figs)
    for goal, status, detail in results:
        print(f"  {goal}: {status} ({detail})")
    payload = {
        "measured_at": datetime.now().isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "ram_gib": round(mem["MemTotal"] / GIB, 1)},
        "base": args.base,
        "figures": [asdict(f) for f in figs],
        "goals": [{"goal": g, "status": s, "detail": d} for g, s, d in results],
    }
    out_json.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"\nfigures: {out_json}")
    if any(f.full_wall_s is not None for f in figs):
        chart(figs, out_png)
        print(f"chart: {out_png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
