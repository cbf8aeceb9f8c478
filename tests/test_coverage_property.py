"""Property test: the sort-and-sweep interval arithmetic against a brute-force per-second reference."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.rules.coverage import compute_frames
from etl.warehouse import clip_runs

T0 = 1_772_000_000.0  # some epoch second in 2026
OFFICERS = ["A", "B", "C"]
CFG = {"params": {"report_deadline_h": 24}}

interval = st.tuples(st.integers(0, 120), st.integers(0, 60)).map(lambda t: (t[0], t[0] + t[1]))
clip_st = st.tuples(st.sampled_from(OFFICERS), interval)
event_st = st.tuples(interval, st.sets(st.sampled_from(OFFICERS), max_size=3))


def _reference(window: tuple[int, int], officers: set[str], clips: list, tol: int):
    ws, we = window
    covered = set()
    for off, (s, e) in clips:
        if off in officers:
            covered.update(range(max(s, ws), min(e, we)))
    gaps, run_start = [], None
    for t in range(ws, we + 1):
        uncovered = t < we and t not in covered
        if uncovered and run_start is None:
            run_start = t
        elif not uncovered and run_start is not None:
            if t - run_start > tol:
                gaps.append((run_start, t))
            run_start = None
    return len(covered), gaps


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(event_st, min_size=1, max_size=6),
    clips=st.lists(clip_st, max_size=15),
    tol=st.sampled_from([0, 3, 10, 30]),
)
def test_coverage_matches_per_second_reference(events, clips, tol):
    ev = pd.DataFrame(
        {
            "incident_no": [f"J{i:02d}" for i in range(len(events))],
            "unit_code": "U",
            "arrived_at": [T0 + w[0] for w, _ in events],
            "ended_at": [T0 + w[1] for w, _ in events],
        }
    )
    att = pd.DataFrame(
        [(f"J{i:02d}", o) for i, (_, offs) in enumerate(events) for o in sorted(offs)],
        columns=["incident_no", "police_no"],
    )
    cl = pd.DataFrame(
        {
            "device_sn": "D",
            "police_no": [o for o, _ in clips],
            "started_at": [T0 + iv[0] for _, iv in clips],
            "ended_at": [T0 + iv[1] for _, iv in clips],
        },
        dtype=object,
    )
    cl["started_at"] = cl["started_at"].astype("float64")
    cl["ended_at"] = cl["ended_at"].astype("float64")
    empty = pd.DataFrame(columns=["report_id", "incident_no", "police_no", "reported_at"])
    asg = pd.DataFrame(columns=["device_sn", "police_no", "from_at", "to_at"])
    dev = pd.DataFrame(columns=["device_sn", "status", "status_since"])
    cov = compute_frames(ev, att, clip_runs.of_clips(cl, asg), empty, asg, dev, CFG, float(tol))

    for i, (window, offs) in enumerate(events):
        no = f"J{i:02d}"
        exp_cov, exp_gaps = _reference(window, offs, clips, tol)
        row = cov.events.set_index("incident_no").loc[no]
        assert row["covered_s"] == exp_cov
        assert row["window_s"] == window[1] - window[0]
        assert row["gap_count"] == len(exp_gaps)
        got = cov.gaps[cov.gaps["incident_no"] == no]
        assert [(int(s - T0), int(e - T0)) for s, e in zip(got["gap_start"], got["gap_end"], strict=True)] == exp_gaps
        assert list(got["gap_no"]) == list(range(1, len(exp_gaps) + 1))
        expected_status = "none" if exp_cov == 0 else ("full" if not exp_gaps else "partial")
        assert row["status"] == expected_status
        pairs = cov.pairs[cov.pairs["incident_no"] == no].set_index("police_no")["has_clip"].to_dict()
        for o in offs:
            own, _ = _reference(window, {o}, clips, tol)
            assert pairs[o] == (own > 0)
