"""What a run's metrics and scoring read, kept for rescoring after a verdict (table ``rescore_inputs``).

A verdict changes which findings count, never the objects, the findings or the tallies the metrics and the
scoring read from the mirrors (~9 s at city scale).  So each ``etl run`` keeps, beside the marts it writes:

* ``base``: the scoring's inputs before the verdicts (``inputs.read_base``: object counts per unit and month,
  every finding matched to its object, the excused findings, devices, units, data months);
* the metrics' event and clip tallies per unit and month before the verdicts (``metrics.load_inputs``) and
  every object a verdict may change in them (``metrics.verdict_objects``);
* per scheme, the item tallies of every own unit under the verdicts applied last (``items.item_tallies``);
* those verdicts (``applied``), so that the next rescore knows which keys and excuses changed since.

``etl.supervision.rescore`` then recomputes only what a change touches.  Each frame is one zstd Arrow IPC
blob (as ``etl.warehouse.snapshots``).  What is kept is derived data: every run with rules writes it anew in
its transaction; it is used only while it describes the marts as they are (``read``: the same run as the
table ``evaluation`` and the last successful run, the same rule configuration and schemes, the same
``VERSION``); anything else (a run without rules, a changed scheme) makes ``rescore`` take its full path.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl.scoring.inputs import BaseInputs
from etl.warehouse.db import param_mark
from etl.warehouse.verdicts import Verdicts, excuse_mode

TABLE = "rescore_inputs"
VERSION = "2"  # bump when what is kept, or the frames it gives, change
_BASE = ("units", "object_counts", "object_findings", "devices", "findings")
_METRICS = ("events", "clips")
_OBJECTS = ("events", "av_keys", "late")


@dataclass
class Kept:
    """What the last run kept (see the module docstring); ``applied``: the verdicts the marts reflect."""

    run_id: int
    as_of: datetime
    base: BaseInputs
    metric_events: pd.DataFrame
    metric_clips: pd.DataFrame
    objects: dict[str, pd.DataFrame]
    tallies: dict[str, pd.DataFrame]
    applied: Verdicts


def fingerprint(cfg: dict, schemes: list[dict]) -> str:
    """A hash of the rule configuration and the schemes: what is kept was computed under them."""
    text = json.dumps([cfg, schemes], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _blob(df: pd.DataFrame) -> bytes:
    tab = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, tab.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as w:
        w.write_table(tab)
    return sink.getvalue().to_pybytes()


def _frame(data: bytes) -> pd.DataFrame:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all().to_pandas()


def _applied_frame(verdicts: Verdicts) -> pd.DataFrame:
    """The verdicts as rows (kind, key, value): exempted keys, excuses, SPOT-CHECK findings and reviewed
    spot-check items (their other fields as JSON)."""
    keys = sorted(verdicts.exempted)
    inc = sorted(verdicts.excuses)
    spot = [(str(t[0]), json.dumps(list(t[1:]))) for t in verdicts.spot]
    items = [(str(t[0]), json.dumps(list(t[1:]))) for t in verdicts.spot_items]
    return pd.DataFrame(
        {
            "kind": ["exempted"] * len(keys)
            + ["excuse"] * len(inc)
            + ["spot"] * len(spot)
            + ["spot_item"] * len(items),
            "key": keys + inc + [k for k, _ in spot] + [k for k, _ in items],
            "value": [""] * len(keys)
            + [str(verdicts.excuses[i]) for i in inc]
            + [v for _, v in spot]
            + [v for _, v in items],
        },
        dtype=object,
    )


def _applied(frame: pd.DataFrame, mode: str) -> Verdicts:
    """The inverse of ``_applied_frame``."""
    ex = frame[frame["kind"] == "exempted"]
    xs = frame[frame["kind"] == "excuse"]

    def tuples(kind: str) -> tuple[tuple, ...]:
        part = frame[frame["kind"] == kind]
        return tuple((str(k), *json.loads(v)) for k, v in zip(part["key"], part["value"], strict=True))

    return Verdicts(
        frozenset(ex["key"].astype(str)),
        dict(zip(xs["key"].astype(str), xs["value"].astype(str), strict=True)),
        mode,
        spot=tuples("spot"),
        spot_items=tuples("spot_item"),
    )


def _put(conn: Connection, run_id: int, rows: dict[str, bytes]) -> None:
    p = param_mark(conn)
    conn.exec_driver_sql(f"DELETE FROM {TABLE} WHERE name IN ({', '.join([p] * len(rows))})", tuple(rows))
    conn.exec_driver_sql(
        f"INSERT INTO {TABLE} (name, run_id, version, data) VALUES ({p}, {p}, {p}, {p})",
        [(name, run_id, VERSION, data) for name, data in rows.items()],
    )


def clear(conn: Connection) -> None:
    """Drop what is kept (a run that keeps nothing: the next rescore takes its full path)."""
    if sa.inspect(conn).has_table(TABLE):
        conn.exec_driver_sql(f"DELETE FROM {TABLE}")


def write(
    conn: Connection,
    *,
    run_id: int | None,
    as_of: datetime,
    cfg: dict,
    schemes: list[dict],
    base: BaseInputs,
    metric_inputs: dict[str, pd.DataFrame],
    objects: dict[str, pd.DataFrame],
    tallies: dict[str, pd.DataFrame],
    verdicts: Verdicts,
) -> None:
    """Replace what is kept with this run's (nothing is kept without a run id), in the caller's transaction."""
    clear(conn)
    if run_id is None:
        return
    meta = {"as_of": pd.Timestamp(as_of).isoformat(), "config": fingerprint(cfg, schemes), "months": base.months}
    rows = {"meta": json.dumps(meta).encode()}
    rows |= {f"base:{n}": _blob(getattr(base, n)) for n in _BASE}
    rows |= {f"metrics:{n}": _blob(metric_inputs[n]) for n in _METRICS}
    rows |= {f"objects:{n}": _blob(objects[n]) for n in _OBJECTS}
    rows |= {f"tallies:{sid}": _blob(t) for sid, t in tallies.items()}
    rows["applied"] = _blob(_applied_frame(verdicts))
    _put(conn, int(run_id), rows)


def update(conn: Connection, kept: Kept, *, tallies: dict[str, pd.DataFrame], verdicts: Verdicts) -> None:
    """After a rescore: the schemes' item tallies and the verdicts the marts now reflect."""
    rows = {f"tallies:{sid}": _blob(t) for sid, t in tallies.items()}
    rows["applied"] = _blob(_applied_frame(verdicts))
    _put(conn, kept.run_id, rows)


def note_applied(conn: Connection, verdicts: Verdicts) -> None:
    """After a full rescore: the verdicts the marts now reflect (what is kept stays valid)."""
    if not sa.inspect(conn).has_table(TABLE):
        return
    row = conn.exec_driver_sql(f"SELECT run_id FROM {TABLE} WHERE name = 'meta'").first()
    if row is not None:
        _put(conn, int(row[0]), {"applied": _blob(_applied_frame(verdicts))})


def read(conn: Connection, *, run_id: int | None, as_of: datetime, cfg: dict, schemes: list[dict]) -> Kept | None:
    """What the run ``run_id`` kept, where it describes the marts as they are: None unless ``run_id`` (of the
    table ``evaluation``) is the last successful run, and it kept it under the same version, evaluation date,
    rule configuration and schemes."""
    if run_id is None or not sa.inspect(conn).has_table(TABLE):
        return None
    last = conn.execute(sa.text("SELECT MAX(run_id) FROM etl_runs WHERE status = 'ok'")).scalar()
    if last is None or int(last) != int(run_id):
        return None
    rows = {
        name: (rid, version, data)
        for name, rid, version, data in conn.exec_driver_sql(f"SELECT name, run_id, version, data FROM {TABLE}")
    }
    if "meta" not in rows or any(rid != run_id or version != VERSION for rid, version, _ in rows.values()):
        return None
    meta = json.loads(bytes(rows["meta"][2]))
    if meta["as_of"] != pd.Timestamp(as_of).isoformat() or meta["config"] != fingerprint(cfg, schemes):
        return None
    names = [f"base:{n}" for n in _BASE] + [f"metrics:{n}" for n in _METRICS] + [f"objects:{n}" for n in _OBJECTS]
    names += [f"tallies:{s['id']}" for s in schemes] + ["applied"]
    if any(n not in rows for n in names):
        return None
    f = {n: _frame(bytes(rows[n][2])) for n in names}
    return Kept(
        run_id=int(run_id),
        as_of=as_of,
        base=BaseInputs(months=list(meta["months"]), **{n: f[f"base:{n}"] for n in _BASE}),
        metric_events=f["metrics:events"],
        metric_clips=f["metrics:clips"],
        objects={n: f[f"objects:{n}"] for n in _OBJECTS},
        tallies={s["id"]: f[f"tallies:{s['id']}"] for s in schemes},
        applied=_applied(f["applied"], excuse_mode(cfg)),
    )
