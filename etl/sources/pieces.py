"""The load of a large source table in pieces, so that the load holds one piece at a time, not the table.

Staging checks each row on its own, except for one thing: rows sharing a key (identical copies collapse,
copies with different content all go to quarantine).  So a large table is read twice through the
streaming readers (``etl.sources.extract.stream_table``):

1. ``survey``: every row's key only (as staging computes it: renamed, trimmed, joined); the keys that occur
   on more than one row are kept (few, usually none);
2. ``pieces``: the rows again, in frames of about ``rows`` rows; rows with a repeated key are held back and
   come together as the last piece.

Each piece is staged by ``etl.sources.staging.stage`` as it is; staging every piece gives the rows and the
quarantine that staging the whole table would give, since every key's rows are staged together.

A source the streaming readers do not take as it is (``StreamError``: ragged rows, bad bytes, an unusual
header) and a table within one piece are read whole as before: ``survey`` then returns the whole frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etl.errors import SourceError
from etl.memory import release_freed
from etl.sources.config import TableSource
from etl.sources.contract import Table
from etl.sources.extract import StreamError, read_table, stream_table
from etl.sources.staging import compact, isin, source_keys

SURVEY_ROWS = 100_000  # the survey keeps only keys: it reads in smaller frames (it runs beside a piece's load)


@dataclass
class Survey:
    """A large source table, surveyed: its rows and the keys held back to the last piece."""

    rows: int
    repeated: pa.Array  # keys on more than one row


def survey(src: TableSource, table: Table, rows: int) -> Survey | pd.DataFrame:
    """The table surveyed for a load in pieces of ``rows`` rows, or its raw rows read whole (within one
    piece, not streamable, or a source error the whole read reports in its own words)."""
    keys: list[pa.Array] = []
    count = 0
    try:
        for raw in stream_table(src, min(rows, SURVEY_ROWS)):
            count += len(raw)
            keys.append(pa.array(compact(source_keys(raw, table, src.columns, src.label)), type=pa.large_string()))
            del raw
            release_freed()
    except (StreamError, SourceError):
        return read_table(src)
    if count <= rows:
        return read_table(src)
    counted = pc.value_counts(pa.chunked_array(keys, type=pa.large_string()))
    del keys
    repeated = counted.field("values").filter(pc.greater(counted.field("counts"), 1))
    return Survey(rows=count, repeated=repeated)


def pieces(src: TableSource, table: Table, surveyed: Survey, rows: int) -> Iterator[pd.DataFrame]:
    """The raw rows again, piece by piece; those with a repeated key together, last.  Raises SourceError
    when the source changed under the load (read differently the second time)."""
    held: list[pd.DataFrame] = []
    try:
        for raw in stream_table(src, rows):
            if len(surveyed.repeated):
                back = isin(source_keys(raw, table, src.columns, src.label), surveyed.repeated).to_numpy()
                if back.any():
                    held.append(raw[back])
                    raw = raw[~back].reset_index(drop=True)
            if len(raw):
                yield raw
    except StreamError:
        raise SourceError(f"数据源 {src.label} 在读取过程中发生变化，请重新运行") from None
    if held:
        yield pd.concat(held, ignore_index=True)
