"""Property: every on-site event, case, action, document and clip of the sources is judged or in the queue.

Random mixes of source faults (missing times, times backwards, unknown officers, devices, units, codes,
ownerless clips, duplicate keys, unparseable values) are written as source systems and loaded by a real
``etl run``; then every object of the sources is either judged by the rules (an on-site event in
``v_event_coverage``; a case in the mirror; an action or document in the mirror with a type the rules know; a clip
in the mirror that belongs to an officer) or listed in ``v_data_quality`` under its table and key.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from etl.pipeline import run
from etl.rules import config
from etl.rules.data_quality import known_document_types
from etl.warehouse.db import make_engine, read_df
from etl.warehouse.intervals import resolve_owners
from tests.etl_fixtures import synthetic, write_sources

KEYS = {
    "incidents": "incident_no",
    "cases": "case_no",
    "case_actions": "action_id",
    "case_documents": "doc_id",
    "clips": "clip_id",
}


def _set(data: dict, table: str, i: int, **values) -> None:
    df = data[table]
    row = i % len(df)
    for k, v in values.items():
        df.loc[df.index[row], k] = v


def _dup(data: dict, table: str, i: int, **values) -> None:
    """A second row with the key of row i and different content."""
    df = data[table]
    row = df.iloc[i % len(df)].to_dict() | values
    data[table] = pd.concat([df, pd.DataFrame([row], dtype=object)], ignore_index=True)


MUTATIONS = {
    "no_arrival": lambda d, i: _set(d, "incidents", i, on_site="1", arrived_at=None),
    "no_end": lambda d, i: _set(d, "incidents", i, on_site="1", ended_at=None),
    "backwards": lambda d, i: _set(d, "incidents", i, on_site="1", ended_at="2025-12-31 00:00:00"),
    "incident_unit": lambda d, i: _set(d, "incidents", i, unit_code="999999999999"),
    "incident_dup": lambda d, i: _dup(d, "incidents", i, category="另一条"),
    "onsite_bad": lambda d, i: _set(d, "incidents", i, on_site="yes"),
    "no_attendance": lambda d, i: d.__setitem__(
        "incident_officers", d["incident_officers"].iloc[: max(0, len(d["incident_officers"]) - 1 - i % 2)]
    ),
    "clip_device": lambda d, i: _set(d, "clips", i, device_sn="GHOST"),
    "clip_officer": lambda d, i: _set(d, "clips", i, police_no="999999"),
    "clip_ownerless": lambda d, i: _set(
        d, "clips", i, device_sn="DSJ0003", police_no=None, started_at="2026-03-02 10:00:00"
    ),
    "clip_backwards": lambda d, i: _set(d, "clips", i, ended_at="2025-06-01 00:00:00"),
    "clip_early_import": lambda d, i: _set(d, "clips", i, imported_at="2025-06-01 00:00:00"),
    "clip_dup": lambda d, i: _dup(d, "clips", i, size_bytes="1"),
    "case_unit": lambda d, i: _set(d, "cases", i, unit_code="999999999999"),
    "case_time": lambda d, i: _set(d, "cases", i, registered_at="2026-13-45 99:00:00"),
    "action_type": lambda d, i: _set(d, "case_actions", i, action_type="dance"),
    "action_officer": lambda d, i: _set(d, "case_actions", i, police_no="999999"),
    "action_case": lambda d, i: _set(d, "case_actions", i, case_no="NO-CASE"),
    "doc_type": lambda d, i: _set(d, "case_documents", i, doc_type="poem"),
    "doc_case": lambda d, i: _set(d, "case_documents", i, case_no="NO-CASE"),
    "doc_dup": lambda d, i: _dup(d, "case_documents", i, legal_basis="另一依据"),
}


TIMES = {  # the time that puts an object in the evaluation (after the evaluation date: not due yet)
    "incidents": "arrived_at",
    "cases": "registered_at",
    "case_actions": "started_at",
    "case_documents": "created_at",
    "clips": "started_at",
}


def _later(data: dict, as_of) -> dict[str, set[str]]:  # noqa: ANN001
    """The objects whose time is after the evaluation date: neither judged nor queued yet, by design."""
    out = {}
    for t, col in TIMES.items():
        when = pd.to_datetime(data[t][col], format="%Y-%m-%d %H:%M:%S", errors="coerce")
        out[t] = set(data[t].loc[(when > pd.Timestamp(as_of)).to_numpy(), KEYS[t]].astype(str))
    return out


def _source_objects(data: dict) -> dict[str, set[str]]:
    out = {t: set(data[t][k].dropna().astype(str)) for t, k in KEYS.items()}
    inc = data["incidents"]
    out["incidents"] = set(inc.loc[inc["on_site"].astype(str) == "1", "incident_no"].astype(str))
    return out


def _judged(url: str) -> dict[str, set[str]]:
    eng = make_engine(url)
    cfg = config.load()
    acts = read_df(eng, "SELECT action_id, action_type FROM case_actions")
    docs = read_df(eng, "SELECT doc_id, doc_type FROM case_documents")
    clips = read_df(eng, "SELECT clip_id, device_sn, police_no, started_at FROM clips")
    asg = read_df(eng, "SELECT device_sn, police_no, from_at, to_at FROM device_assignments")
    for df, cols in ((clips, ["started_at"]), (asg, ["from_at", "to_at"])):
        for c in cols:
            df[c] = pd.to_datetime(df[c]).astype("int64").where(df[c].notna()) / 1e9
    owner = resolve_owners(clips, asg)
    return {
        "incidents": set(read_df(eng, "SELECT incident_no FROM v_event_coverage")["incident_no"]),
        "cases": set(read_df(eng, "SELECT case_no FROM cases")["case_no"]),
        "case_actions": set(acts.loc[acts["action_type"].isin(list(cfg["actions"])), "action_id"]),
        "case_documents": set(docs.loc[docs["doc_type"].isin(known_document_types(cfg)), "doc_id"]),
        "clips": set(clips.loc[owner.notna().to_numpy(), "clip_id"]),
    }


# each example is a real run (~2 s): no shrinking, the failure message names the faults
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(st.lists(st.tuples(st.sampled_from(sorted(MUTATIONS)), st.integers(0, 60)), min_size=1, max_size=10))
@example([(name, 3 * i + 1) for i, name in enumerate(sorted(MUTATIONS))])  # every fault at once
def test_every_object_is_judged_or_queued(faults):
    data = synthetic(30)
    for name, i in faults:
        MUTATIONS[name](data, i)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'w.sqlite'}"
        res = run(write_sources(Path(tmp) / "src", data), warehouse=url)
        queue = read_df(make_engine(url), "SELECT table_name, object_key FROM v_data_quality")
        judged = _judged(url)
    queued = {t: set(queue.loc[queue["table_name"] == t, "object_key"]) for t in KEYS}
    later = _later(data, res.as_of)
    for table, objects in _source_objects(data).items():
        missing = objects - judged[table] - queued[table] - later[table]
        assert not missing, f"{table}: neither judged nor in the queue: {sorted(missing)} (faults {faults})"
