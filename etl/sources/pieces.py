"""The load of a large source table in pieces, so that the load holds one piece at a time, not the table.

Staging checks each row on its own, except for one thing: rows sharing a key (identical copies collapse,
copies with different content all go to quarantine).  So a large table is read twice through the
streaming readers (``etl.sources.extract.stream_table``):

1. ``survey``: every row's key only (as staging computes it: renamed, trimmed, joined), as a 64-bit hash
   (8 bytes a row: 190 MB for the 23.5M clips of ten cities, where the keys' text with a count per distinct
   key took ~3 GB); the hashes that occur on more than one row are kept (few, usually none);
2. ``pieces``: the rows again, in frames of about ``rows`` rows; rows whose key hash is repeated are held
   back and come together as the last piece.  Rows with equal keys have equal hashes, so every key's rows are
   together; a row held back by a collision of two hashes (a chance of ~10^-5 at 23.5M rows) is merely staged
   in the last piece, where staging treats it as anywhere else.

Each piece is staged by ``etl.sources.staging.stage`` as it is; staging every piece gives the rows and the
quarantine that staging the whole table would give, since every key's rows are staged together.

A source the streaming readers do not take as it is (``StreamError``: ragged rows, bad bytes, an unusual
header) and a table within one piece are read whole as before: ``survey`` then returns the whole frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from etl.errors import SourceError
from etl.memory import release_freed
from etl.sources.config import TableSource
from etl.sources.contract import Table
from etl.sources.extract import StreamError, read_table, stream_table
from etl.sources.staging import drop_loaded, source_keys

SURVEY_ROWS = 100_000  # the survey keeps only key hashes: it reads in smaller frames (it runs beside a piece's load)
_HASH_KEY = "etl-piece-keys01"  # 16 bytes: the hash key of the survey's key hashes


@dataclass
class Survey:
    """A large source table, surveyed: its rows and the key hashes held back to the last piece."""

    rows: int
    repeated: np.ndarray  # uint64, sorted: hashes (``key_hashes``) found on more than one row


def key_hashes(keys: pd.Series) -> np.ndarray:
    """A 64-bit hash per key (null keys hash alike; their rows are held back together, as staging needs)."""
    return pd.util.hash_pandas_object(keys.astype("str"), index=False, hash_key=_HASH_KEY).to_numpy(np.uint64)


def survey(src: TableSource, table: Table, rows: int) -> Survey | pd.DataFrame:
    """The table surveyed for a load in pieces of ``rows`` rows, or its raw rows read whole (within one
    piece, not streamable, or a source error the whole read reports in its own words)."""
    hashes: list[np.ndarray] = []
    count = 0
    try:
        for raw in stream_table(src, min(rows, SURVEY_ROWS)):
            count += len(raw)
            hashes.append(key_hashes(source_keys(raw, table, src.columns, src.label)))
            del raw
            release_freed()
    except (StreamError, SourceError):
        return read_table(src)
    if count <= rows:
        return read_table(src)
    h = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
    del hashes
    h.sort()
    return Survey(rows=count, repeated=np.unique(h[1:][h[1:] == h[:-1]]))


@dataclass
class NewRows:
    """A later run's read of a table with ``updated_at``: the raw rows above its watermark, and how many at or
    below it the read left out (they count as read and unchanged, as if staging had dropped them)."""

    frame: pd.DataFrame
    dropped: int


def read_new(src: TableSource, table: Table, watermark: tuple[str, str], rows: int) -> NewRows | pd.DataFrame:
    """The rows of a CSV file (or a database table whose SQL cannot take the watermark) above ``watermark``,
    streamed in frames of ``rows`` rows and each cut as staging would (``drop_loaded``), so that a daily run
    holds the day's rows, not the year's (a province's case documents: a 1 GB file).  The whole raw frame, as
    ``read_table`` gives it, where the streaming readers cannot take the source (staging then drops the rows)."""
    kept: list[pd.DataFrame] = []
    dropped = 0
    try:
        for raw in stream_table(src, rows):
            new, n = drop_loaded(raw, table, src.columns, src.label, src.dt_format, watermark)
            kept.append(new)
            dropped += n
            del raw, new
            release_freed()
    except StreamError:
        return read_table(src)
    return NewRows(kept[0] if len(kept) == 1 else pd.concat(kept, ignore_index=True), dropped)


def pieces(src: TableSource, table: Table, surveyed: Survey, rows: int) -> Iterator[pd.DataFrame]:
    """The raw rows again, piece by piece; those with a repeated key together, last.  Raises SourceError
    when the source changed under the load (read differently the second time)."""
    held: list[pd.DataFrame] = []
    try:
        for raw in stream_table(src, rows):
            if len(surveyed.repeated):
                h = key_hashes(source_keys(raw, table, src.columns, src.label))
                back = np.isin(h, surveyed.repeated)
                if back.any():
                    held.append(raw[back])
                    raw = raw[~back].reset_index(drop=True)
            if len(raw):
                yield raw
    except StreamError:
        raise SourceError(f"数据源 {src.label} 在读取过程中发生变化，请重新运行") from None
    if held:
        yield pd.concat(held, ignore_index=True)
