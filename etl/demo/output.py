"""Writers of the demo: SQLite databases, CSV folders, XLSX workbooks, YAML files, media files.

Every writer is byte-deterministic: rows in a fixed order, fixed workbook
properties and fixed zip entry timestamps.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import sqlite3
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from openpyxl import Workbook
from openpyxl.styles import Font

from etl.demo.common import NULL_T, fmt_times
from etl.sources.contract import TABLES

FIXED_ZIP_TIME = (2026, 11, 28, 0, 0, 0)
FIXED_DOC_TIME = datetime(2026, 11, 28, 0, 0, 0)


def contract_frame(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """The contract columns of ``table`` as Python values: text times, int flags, None for nulls."""
    out = {}
    for col in TABLES[table].columns:
        v = df[col.name].to_numpy()
        if col.kind == "dt":
            out[col.name] = (
                fmt_times(v)
                if v.dtype.kind in "iu"
                else np.array(
                    [None if x is None or (isinstance(x, float) and np.isnan(x)) else x for x in v], dtype=object
                )
            )
        elif col.kind in ("bool", "int"):
            s = pd.Series(v)
            if s.dtype.kind in "iub":
                arr = s.astype(np.int64).astype(object).to_numpy().copy()
                arr[s.to_numpy() == NULL_T] = None
                out[col.name] = arr
            else:
                arr = np.array([None if x is None or pd.isna(x) or x == NULL_T else int(x) for x in v], dtype=object)
                out[col.name] = arr
        else:
            out[col.name] = (
                np.array(
                    [None if x is None or (isinstance(x, float) and np.isnan(x)) else str(x) for x in v], dtype=object
                )
                if v.dtype != object
                else np.where(pd.isna(v), None, v).astype(object)
            )
    return pd.DataFrame(out)


def write_sqlite(path: Path, tables: dict[str, pd.DataFrame], chunk: int = 200_000, append: bool = False) -> None:
    """One SQLite file with the given tables (TEXT codes, INTEGER flags), converted chunk by chunk.

    ``append``: add the rows to the file's tables (created when missing) instead of replacing the file (the
    province demo writes city by city, ``etl.demo.province``)."""
    if path.exists() and not append:
        path.unlink()
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        for name, df in tables.items():
            cols = TABLES[name].columns
            decl = ", ".join(f'"{c.name}" {"INTEGER" if c.kind in ("bool", "int") else "TEXT"}' for c in cols)
            con.execute(f'CREATE TABLE {"IF NOT EXISTS " if append else ""}"{name}" ({decl})')
            marks = ", ".join("?" * len(cols))
            for lo in range(0, len(df), chunk):
                part = contract_frame(df.iloc[lo : lo + chunk], name)
                rows = zip(*(part[c.name].tolist() for c in cols), strict=True)
                con.executemany(f'INSERT INTO "{name}" VALUES ({marks})', rows)
        con.commit()
    finally:
        con.close()


def text_frame(df: pd.DataFrame, table: str, dt_format: str | None = None) -> pd.DataFrame:
    """A table as text cells ('' for null), times re-formatted when ``dt_format`` is given."""
    df = contract_frame(df, table)
    out = {}
    for col in TABLES[table].columns:
        v = df[col.name]
        if col.kind == "dt" and dt_format:
            v = pd.to_datetime(v, format="%Y-%m-%d %H:%M:%S").dt.strftime(dt_format)
        v = v.astype(object)
        out[col.name] = v.where(v.notna(), "").astype(str)
    return pd.DataFrame(out)


def write_csv(path: Path, df: pd.DataFrame, encoding: str, append: bool = False) -> None:
    """``append``: add the rows to an existing file, without a second header or byte order mark."""
    if append and path.exists():
        body = df.to_csv(index=False, header=False, lineterminator="\r\n")
        enc = "utf-8" if encoding.lower().replace("_", "-") == "utf-8-sig" else encoding
        with open(path, "ab") as f:
            f.write(body.encode(enc))
        return
    path.write_bytes(df.to_csv(index=False, lineterminator="\r\n").encode(encoding))


def _fixed_zip(data: bytes) -> bytes:
    """Rewrite an XLSX zip with fixed entry timestamps and fixed core properties."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = body.decode("utf-8")
                text = re.sub(r"(<dcterms:(created|modified)[^>]*>)[^<]*(<)", r"\g<1>2026-11-28T00:00:00Z\g<3>", text)
                body = text.encode("utf-8")
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, body)
    return buf.getvalue()


def write_xlsx(path: Path, df: pd.DataFrame, sheet: str) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append(list(df.columns))
    for row in df.itertuples(index=False, name=None):
        ws.append([None if (x is None or (isinstance(x, float) and np.isnan(x))) else x for x in row])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    wb.properties.creator = "长治市公安局"
    wb.properties.created = FIXED_DOC_TIME
    wb.properties.modified = FIXED_DOC_TIME
    buf = io.BytesIO()
    wb.save(buf)
    path.write_bytes(_fixed_zip(buf.getvalue()))


def bcrypt_hash(password: str, seed: int, username: str) -> str:
    """bcrypt hash with a salt derived from the seed, so users.yaml is byte-identical per seed."""
    import bcrypt

    raw = hashlib.sha256(f"{seed}:{username}:demo-salt".encode()).digest()[:16]
    std = base64.b64encode(raw).decode().rstrip("=")  # 22 chars
    alpha_std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    alpha_bc = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    salt22 = std.translate(str.maketrans(alpha_std, alpha_bc))
    salt22 = salt22[:21] + ".Oeu"[alpha_bc.index(salt22[21]) % 4]  # the last char carries 2 bits only
    return bcrypt.hashpw(password.encode(), f"$2b$10${salt22}".encode()).decode()


def write_yaml(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=200), encoding="utf-8")


def write_media(
    root: Path,
    clips: pd.DataFrame,
    seed: int,
    hash_ids: set[str],
    missing_ids: set[str],
    videos: dict[str, bytes] | None = None,
) -> list[str]:
    """Write the original files; returns the sha256 of every clip (as catalogued at import).

    ``videos``: clip id -> the bytes to write instead of the random body (playable demo videos); the random
    body is still drawn so that every other file is the same with or without them."""
    videos = videos or {}
    rng = np.random.default_rng([seed, 7])
    sizes = clips["size_bytes"].to_numpy()
    deleted = clips["deleted_at"].to_numpy() != NULL_T
    made: set[Path] = set()
    shas = []
    for cid, rel, size, gone in zip(clips["clip_id"], clips["file_path"], sizes, deleted, strict=True):
        body = rng.bytes(int(size))
        body = videos.get(cid, body)
        shas.append(hashlib.sha256(body).hexdigest())
        if gone or cid in missing_ids:
            continue
        path = root / rel
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        if cid in hash_ids:
            body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]  # altered after cataloguing
        path.write_bytes(body)
    return shas


def pseudo_hashes(n: int, seed: int) -> np.ndarray:
    """Catalogue digests (64 hex chars) when no media is written (integrity is then not checked)."""
    raw = np.frombuffer(np.random.default_rng([seed, 11]).bytes(32 * n), dtype=np.uint8).reshape(n, 32)
    table = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    hexed = np.empty((n, 64), dtype=np.uint8)
    hexed[:, 0::2] = table[raw >> 4]
    hexed[:, 1::2] = table[raw & 15]
    return hexed.view("S64").ravel().astype("U64").astype(object)
