"""Readers: one per source kind, each returning the raw rows of one table as text.

Every reader returns a DataFrame whose columns are named as in the source and
whose values are strings (pandas ``str`` dtype, missing values as NA): codes are
never parsed as numbers, so leading zeros survive.  Values that a driver or
openpyxl hands over typed (numbers, datetimes, booleans) are turned into
canonical text: integers without ``.0``, datetimes as ``YYYY-MM-DD HH:MM:SS``,
booleans as ``0``/``1``.

A source that cannot be read at all raises :class:`etl.errors.SourceError`
with a one-line Chinese message naming the system and table.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from etl.errors import SourceError
from etl.sources.config import CONTRACT_DT_FORMAT, TableSource
from etl.sources.contract import LEDGER_COLUMNS, LEDGER_STATUS

FETCH_ROWS = 50_000  # rows fetched per round trip from SQL sources


# --- value canonicalisation -------------------------------------------------------------


def cell_text(value) -> str | None:  # noqa: ANN001
    """Canonical text of one typed value (XLSX cell, driver value)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.strftime(CONTRACT_DT_FORMAT)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def text_array(values: list | tuple) -> pa.Array:
    """A column of driver values as an Arrow large_string array (vectorised for the common types)."""
    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        arr = None  # mixed or unusual types: one value at a time
    if arr is not None:
        t = arr.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return arr.cast(pa.large_string())
        if pa.types.is_null(t):
            return pa.nulls(len(arr), pa.large_string())
        if pa.types.is_integer(t) or pa.types.is_date(t):
            return pc.cast(arr, pa.large_string())
        if pa.types.is_boolean(t):
            return pc.cast(pc.cast(arr, pa.int8()), pa.large_string())
        if pa.types.is_timestamp(t) and t.tz is None:
            stamps = arr.to_numpy(zero_copy_only=False).astype("datetime64[s]")
            text = np.char.replace(np.datetime_as_string(stamps, unit="s"), "T", " ")
            return pa.array(text, type=pa.large_string(), mask=np.isnat(stamps))
    return pa.array([cell_text(v) for v in values], type=pa.large_string())


def _clean_headers(df: pd.DataFrame) -> pd.DataFrame:
    df.columns = [str(c).replace("\ufeff", "").strip() for c in df.columns]
    return df


# --- SQL sources -------------------------------------------------------------------------


def _engine(src: TableSource) -> sa.Engine:
    url = src.system.url or ""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise SourceError(f"数据源 {src.label} 的地址无效：{src.system.location}") from None
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database or ""
        if not db or db == ":memory:" or not Path(db).is_file():
            raise SourceError(f"数据源 {src.label} 的数据库文件不存在：{db or url}")
    try:
        return sa.create_engine(parsed)
    except Exception as exc:  # noqa: BLE001 - missing driver, bad options
        raise SourceError(f"数据源 {src.label} 无法连接（{src.system.location}）：{_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _split_name(name: str) -> tuple[str | None, str]:
    schema, dot, table = name.rpartition(".")
    return (schema or None, table) if dot else (None, name)


_PARAM = {"qmark": "?", "numeric": ":1", "named": ":since", "format": "%s", "pyformat": "%(since)s"}


def _streaming_cursor(dbapi_conn, dialect: str):  # noqa: ANN001, ANN202
    """A cursor that streams rows instead of loading the whole result (server-side where it matters)."""
    if dialect == "postgresql":
        return dbapi_conn.cursor(name="etl_extract")
    if dialect in ("mysql", "mariadb"):
        import pymysql.cursors

        return dbapi_conn.cursor(pymysql.cursors.SSCursor)
    return dbapi_conn.cursor()


def read_sql(src: TableSource, since: str | None = None) -> pd.DataFrame:
    """All rows of a database table; with ``since``, only rows whose updated_at >= since.

    Rows are fetched through the driver's own cursor in chunks of plain tuples
    and converted column by column into Arrow text (the fast path).
    """
    engine = _engine(src)
    schema, table = _split_name(src.name)
    try:
        with engine.connect() as conn:
            insp = sa.inspect(conn)
            if not insp.has_table(table, schema=schema):
                raise SourceError(f"数据源 {src.label} 中没有表 {src.name}（{src.system.location}）")
            reflected = {c["name"]: c["type"] for c in insp.get_columns(table, schema=schema)}
        prep = engine.dialect.identifier_preparer
        qname = (prep.quote_schema(schema) + "." if schema else "") + prep.quote(table)
        sql, params = f"SELECT * FROM {qname}", None
        upd = src.source_column("updated_at")
        if since is not None and upd in reflected:
            is_dt = isinstance(reflected[upd], (sa.DateTime, sa.Date))
            value = datetime.strptime(since, CONTRACT_DT_FORMAT) if is_dt else since
            style = engine.dialect.paramstyle
            sql += f" WHERE {prep.quote(upd)} >= {_PARAM[style]}"
            params = {"since": value} if style in ("named", "pyformat") else (value,)
        fast = _read_sqlite_arrow(engine, schema, table, reflected, upd if params is not None else None, since)
        if fast is not None:
            return _clean_headers(fast)
        dbapi_conn = engine.raw_connection()
        try:
            cur = _streaming_cursor(dbapi_conn, engine.dialect.name)
            cur.execute(sql, params) if params is not None else cur.execute(sql)
            columns = [d[0] for d in cur.description]
            chunks: list[list[pa.Array]] = [[] for _ in columns]
            while rows := cur.fetchmany(FETCH_ROWS):
                for i, col in enumerate(zip(*rows, strict=True)):
                    chunks[i].append(text_array(col))
            cur.close()
        finally:
            dbapi_conn.close()
    except SourceError:
        raise
    except (sa.exc.SQLAlchemyError, engine.dialect.loaded_dbapi.Error) as exc:
        raise SourceError(f"数据源 {src.label} 读取失败（{src.system.location}）：{_first_line(exc)}") from None
    finally:
        engine.dispose()
    data = {
        name: pd.Series(pa.chunked_array(parts, type=pa.large_string()), dtype="str")
        for name, parts in zip(columns, chunks, strict=True)
    }
    return _clean_headers(pd.DataFrame(data, columns=columns))


def _sqlite_text(q: str) -> str:
    """SQLite expression: a column as the text ``cell_text`` gives its Python value (integral reals
    without '.0'; everything else as SQLite renders it, NULL stays NULL)."""
    return (
        f"CASE typeof({q}) WHEN 'real' THEN CASE WHEN {q} = CAST({q} AS INTEGER) "
        f"THEN CAST(CAST({q} AS INTEGER) AS TEXT) ELSE CAST({q} AS TEXT) END ELSE CAST({q} AS TEXT) END"
    )


def _read_sqlite_arrow(
    engine: sa.Engine, schema: str | None, table: str, types: dict, updated_col: str | None, since: str | None
) -> pd.DataFrame | None:
    """A SQLite source table read in C by Apache Arrow's ADBC driver, every column as text.

    About 3x faster than driver tuples at city scale (2.4M clips: 5.4 s instead
    of 17 s).  None, to use the driver path, where this one does not apply or
    cannot be trusted: not SQLite, an attached schema, no ADBC driver, a driver
    error, a blob that is not valid UTF-8 text, or a non-integral real (whose
    last digits SQLite may render differently from Python).
    """
    if engine.dialect.name != "sqlite" or schema is not None:
        return None
    try:
        import adbc_driver_sqlite.dbapi as adbc
    except ImportError:
        return None
    path = engine.url.database
    q = engine.dialect.identifier_preparer.quote
    columns = list(types)
    # a column of text affinity (declared type with CHAR, CLOB or TEXT) never holds a real
    numeric = [c for c, t in types.items() if not any(k in str(t).upper() for k in ("CHAR", "CLOB", "TEXT"))]
    sql = "SELECT " + ", ".join(f"{_sqlite_text(q(c))} AS {q(c)}" for c in columns) + f" FROM {q(table)}"
    reals = " OR ".join(f"(typeof({q(c)}) = 'real' AND {q(c)} <> CAST({q(c)} AS INTEGER))" for c in numeric) or "0"
    where, params = "", ()
    if updated_col is not None:
        where, params = f" WHERE {q(updated_col)} >= ?", (since,)
    try:
        with adbc.connect(path) as conn, conn.cursor() as cur:
            # a non-integral real: Python's repr and SQLite's text may differ in the last digits
            cur.execute(
                f"SELECT EXISTS (SELECT 1 FROM {q(table)}{where}{' AND' if where else ' WHERE'} ({reals}))", params
            )
            if cur.fetchone()[0]:
                return None
            cur.execute(sql + where, params)
            data = cur.fetch_arrow_table()
        data.validate(full=True)
    except Exception:  # noqa: BLE001 - any trouble: the driver path reads it and reports errors
        return None
    return pd.DataFrame(
        {name: pd.Series(data.column(i).cast(pa.large_string()), dtype="str") for i, name in enumerate(columns)},
        columns=columns,
    )


# --- file sources ------------------------------------------------------------------------


def _file(src: TableSource, ext: str) -> Path:
    folder = src.system.folder
    if folder is None or not folder.is_dir():
        raise SourceError(f"数据源 {src.label} 的文件夹不存在：{folder}")
    path = folder / f"{src.name}.{ext}"
    if not path.is_file():
        raise SourceError(f"数据源 {src.label} 缺少文件 {path.name}（{folder}）")
    return path


def _read_csv_arrow(path: Path, enc: str) -> pd.DataFrame | None:
    """A UTF-8 file through Arrow's multi-threaded parser (~4x faster on a 100 MB file).  None for anything it
    rejects or cannot do (other encodings, ragged rows, bad bytes, empty files): pandas' own parser then reads
    it, whose result and messages are the reference."""
    if enc.lower().replace("_", "-") not in ("utf-8", "utf8", "utf-8-sig"):
        return None
    try:
        df = pd.read_csv(path, dtype="str", encoding=enc, keep_default_na=False, na_values=[""], engine="pyarrow")
    except Exception:  # noqa: BLE001 - the C parser decides and reports
        return None
    return _clean_headers(df)


def read_csv(src: TableSource) -> pd.DataFrame:
    path = _file(src, "csv")
    enc = src.system.encoding
    fast = _read_csv_arrow(path, enc)
    if fast is not None:
        return fast
    try:
        df = pd.read_csv(path, dtype="str", encoding=enc, keep_default_na=False, na_values=[""], skipinitialspace=False)
    except UnicodeDecodeError:
        raise SourceError(f"数据源 {src.label} 的文件 {path.name} 不是 {enc} 编码，无法读取") from None
    except pd.errors.EmptyDataError:
        raise SourceError(f"数据源 {src.label} 的文件 {path.name} 为空（没有表头）") from None
    except pd.errors.ParserError as exc:
        raise SourceError(f"数据源 {src.label} 的文件 {path.name} 格式错误：{_first_line(exc)}") from None
    except OSError as exc:
        raise SourceError(f"数据源 {src.label} 的文件 {path.name} 无法读取：{exc.strerror or exc}") from None
    return _clean_headers(df)


def _read_workbook(path: Path, label: str) -> pd.DataFrame:
    """First sheet of a workbook, header row first, every cell as canonical text."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
        raise SourceError(f"数据源 {label} 的工作簿 {path.name} 无法打开：{_first_line(exc)}") from None
    try:
        ws = wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None or all(h is None or str(h).strip() == "" for h in header):
            raise SourceError(f"数据源 {label} 的工作簿 {path.name} 为空（没有表头）")
        names = [cell_text(h) or f"列{i + 1}" for i, h in enumerate(header)]
        width = len(names)
        body = []
        for row in rows:
            cells = [cell_text(v) for v in row[:width]]
            if all(c is None or c == "" for c in cells):
                continue  # blank lines at the end of a sheet
            body.append(cells + [None] * (width - len(cells)))
    finally:
        wb.close()
    df = pd.DataFrame(body, columns=names, dtype=object) if body else pd.DataFrame(columns=names)
    df = df.astype("str").where(df.notna(), None) if body else df.astype("str")
    return _clean_headers(df)


def read_xlsx(src: TableSource) -> pd.DataFrame:
    return _read_workbook(_file(src, "xlsx"), src.label)


def read_ledgers(src: TableSource) -> pd.DataFrame:
    """The ledger folder: one ``<unit_code>.xlsx`` per unit -> one frame with ``unit_code``."""
    folder = src.system.folder
    if folder is None or not folder.is_dir():
        raise SourceError(f"数据源 {src.label} 的台账文件夹不存在：{folder}")
    frames = []
    for path in sorted(folder.glob("*.xlsx")):
        if path.name.startswith("~$"):
            continue  # Excel lock files
        df = _read_workbook(path, src.label)
        rename = {k: v for k, v in LEDGER_COLUMNS.items() if k in df.columns and k not in src.columns}
        df = df.rename(columns=rename)
        status_col = src.source_column("status")
        if status_col in df.columns:
            word = df[status_col].str.strip()
            df[status_col] = word.map(LEDGER_STATUS).fillna(word).astype("str")
        df["unit_code"] = path.stem.strip()
        frames.append(df)
    if not frames:
        cols = list(LEDGER_COLUMNS.values()) + ["unit_code"]
        return pd.DataFrame({c: pd.Series(dtype="str") for c in cols})
    return pd.concat(frames, ignore_index=True)


def can_push_down(src: TableSource) -> bool:
    """Whether an updated_at watermark can be applied in the source's SQL."""
    return src.system.kind == "url" and src.dt_format == CONTRACT_DT_FORMAT


def read_table(src: TableSource, since: str | None = None) -> pd.DataFrame:
    """The raw rows of one declared table (``since`` is honoured by SQL sources only)."""
    kind = src.system.kind
    if kind == "url":
        return read_sql(src, since if can_push_down(src) else None)
    if kind == "csv":
        return read_csv(src)
    if kind == "xlsx":
        return read_xlsx(src)
    if kind == "ledger":
        return read_ledgers(src)
    raise SourceError(f"数据源 {src.label} 的格式 {kind} 不受支持")
