"""Marts rewritten by difference (etl.load.write_changed) end up holding exactly the new rows."""

from __future__ import annotations

import pandas as pd
import pytest

from etl.db import make_engine
from etl.load import write_changed
from etl.schema import ensure_schema

GAP_COLS = ["incident_no", "gap_no", "gap_start", "gap_end", "gap_s"]


def _gaps(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=GAP_COLS).astype({"gap_no": "int64", "gap_s": "float64"})


def _stored(engine) -> list[tuple]:  # noqa: ANN001
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT incident_no, gap_no, gap_start, gap_end, gap_s FROM event_gaps "
                                    "ORDER BY incident_no, gap_no").fetchall()
    return [(r[0], int(r[1]), str(r[2]), str(r[3]), float(r[4])) for r in rows]


@pytest.mark.parametrize("url_fixture", ["sqlite_url", "pg_url"])
def test_only_changed_keys_are_rewritten_and_the_table_equals_the_frame(url_fixture: str,
                                                                       request: pytest.FixtureRequest) -> None:
    engine = make_engine(request.getfixturevalue(url_fixture))
    first = _gaps([("J1", 1, "2026-03-01 10:00:00", "2026-03-01 10:05:00", 300.0),
                   ("J1", 2, "2026-03-01 10:20:00", "2026-03-01 10:21:00", 60.0),
                   ("J2", 1, "2026-03-02 08:00:00", "2026-03-02 08:00:40", 40.0),
                   ("J3", 1, "2026-03-03 08:00:00", "2026-03-03 08:01:00", 60.0)])
    with engine.begin() as conn:
        ensure_schema(conn)
        conn.exec_driver_sql("DELETE FROM event_gaps")
        assert write_changed(conn, "event_gaps", first, "incident_no", {"gap_start", "gap_end"}) == 4
    # J1 loses its second gap, J2 unchanged, J3 gone, J4 new
    second = _gaps([("J1", 1, "2026-03-01 10:00:00", "2026-03-01 10:05:00", 300.0),
                    ("J2", 1, "2026-03-02 08:00:00", "2026-03-02 08:00:40", 40.0),
                    ("J4", 1, "2026-03-04 09:00:00", "2026-03-04 09:00:31", 31.0)])
    with engine.begin() as conn:
        assert write_changed(conn, "event_gaps", second, "incident_no", {"gap_start", "gap_end"}) == 2  # J1, J4
    assert _stored(engine) == [tuple(r) for r in second.itertuples(index=False, name=None)]
    with engine.begin() as conn:  # nothing differs: nothing written
        assert write_changed(conn, "event_gaps", second, "incident_no", {"gap_start", "gap_end"}) == 0
    engine.dispose()
