"""Export and import of the supervision record (``etl supervision export|import``): JSON lines, lossless.

The file: a header line ``{"format": "avsup-supervision", "version": 1, "exported_at": ..., "counts": {...}}``
and then one line per row, ``{"table": "sup_reviews", "row": {column: value, ...}}``, in the order of
``etl.warehouse.schema.SUPERVISION_TABLES`` and each table's key.  Times are text ``YYYY-MM-DD HH:MM:SS``,
binary values ``{"$base64": "..."}``, everything else plain JSON (floats round-trip exactly).

Import re-attaches by key: every row keeps its key (finding_key, incident_no, the ids of reviews, appeals and
publications, publication + unit / item / finding / frame) -- the findings it names are found again in the
target warehouse because finding keys are stable across warehouses loaded from the same sources.  A row whose
key exists with the same values is skipped (an import is idempotent); a row whose key exists with different
values refuses the whole import (nothing written: a judgement is never overwritten).  One transaction; audited;
the SPOT-CHECK findings of imported spot-check reviews written (``etl.rules.spotcheck.sync``), metrics and scores
recomputed when anything was imported.
"""

from __future__ import annotations

import base64
import json
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from etl.errors import SupervisionError
from etl.rules import spotcheck as spotcheck_rules
from etl.supervision import actions
from etl.users import User
from etl.warehouse.schema import SUPERVISION_TABLES, metadata

FORMAT = "avsup-supervision"
FORMAT_VERSION = 1
# The key a row is re-attached by, per table (the primary key, or the natural key where there is none).
KEYS: dict[str, tuple[str, ...]] = {
    "sup_finding_state": ("finding_key",),
    "sup_reviews": ("review_id",),
    "sup_appeals": ("appeal_id",),
    "sup_excuse_reviews": ("incident_no",),
    "sup_excuse_history": ("id",),
    "sup_publications": ("publication_id",),
    "sup_published_scores": ("publication_id", "unit_code"),
    "sup_published_items": ("publication_id", "unit_code", "item_id"),
    "sup_published_findings": ("publication_id", "finding_key"),
    "sup_published_frames": ("publication_id", "name"),
    "sup_campaigns": ("campaign_id",),
    "sup_spotcheck_items": ("campaign_id", "object_key"),
    "sup_spotcheck_points": ("campaign_id", "object_key", "point_id"),
    "sup_spotcheck_history": ("id",),
    "sup_notices": ("notice_id",),
    "sup_notice_findings": ("notice_id", "finding_key"),
    "sup_notice_events": ("id",),
}
# Tables whose integer id the database numbers: after an import their sequences must pass the imported ids.
SERIAL = {
    "sup_reviews": "review_id",
    "sup_appeals": "appeal_id",
    "sup_excuse_history": "id",
    "sup_publications": "publication_id",
    "sup_campaigns": "campaign_id",
    "sup_spotcheck_history": "id",
    "sup_notices": "notice_id",
    "sup_notice_events": "id",
}


def _tables() -> list[sa.Table]:
    missing = set(SUPERVISION_TABLES) - set(KEYS)
    if missing:  # a table added to the record without a key here would silently not travel
        raise SupervisionError(f"导出格式缺少表的主键定义：{', '.join(sorted(missing))}")
    return [metadata.tables[name] for name in SUPERVISION_TABLES]


def _plain(value: object) -> object:
    """A database value as JSON: times as text, blobs as base64, numpy/decimal scalars as Python numbers."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _db_value(column: sa.Column, value: object) -> object:
    """A JSON value back as the column takes it (the inverse of ``_plain``)."""
    if value is None:
        return None
    if isinstance(value, dict) and "$base64" in value:
        return base64.b64decode(value["$base64"])
    if isinstance(column.type, sa.DateTime) and isinstance(value, str):
        return datetime.strptime(value[:19], "%Y-%m-%d %H:%M:%S")
    if isinstance(column.type, sa.Date) and isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value


def _rows(conn: Connection, table: sa.Table) -> list[dict]:
    order = [table.c[k] for k in KEYS[table.name]]
    return [
        {c: _plain(v) for c, v in row.items()} for row in conn.execute(sa.select(table).order_by(*order)).mappings()
    ]


def _check_user(user: User, what: str) -> None:
    actions._role(user, actions.REVIEWER_ROLES, what)
    if user.scope is not None:
        raise SupervisionError(f"只有全市范围的法制部门用户可以{what}")


def export(target: Engine | Connection, user: User, out: Path | str, *, reason: str, page: str = "cli") -> dict:
    """Write every supervision record to ``out`` (JSON lines); returns rows per table.  Audited (a read of all)."""
    text = actions._reason(reason)
    _check_user(user, "导出督察记录")
    at = actions._now()
    with actions._transaction(target) as conn:
        data = {table.name: _rows(conn, table) for table in _tables()}
        counts = {name: len(rows) for name, rows in data.items()}
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        with tmp.open("w", encoding="utf-8") as fh:
            header = {"format": FORMAT, "version": FORMAT_VERSION, "exported_at": _plain(at), "counts": counts}
            fh.write(json.dumps(header, ensure_ascii=False) + "\n")
            for name, rows in data.items():
                for row in rows:
                    fh.write(json.dumps({"table": name, "row": row}, ensure_ascii=False, sort_keys=True) + "\n")
        tmp.replace(path)
        actions._audit(conn, user, page, "supervision:export", str(path), text, at)
    return counts


def read_file(path: Path | str) -> dict[str, list[dict]]:
    """The rows of an export file per table; SupervisionError (with the line number) when it is not one."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SupervisionError(f"无法读取导入文件 {path}：{exc}") from exc
    if not lines:
        raise SupervisionError(f"导入文件为空：{path}")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SupervisionError(f"不是督察记录导出文件：{path}")
    if header.get("version") != FORMAT_VERSION:
        raise SupervisionError(f"导出文件版本不受支持：{header.get('version')}（应为 {FORMAT_VERSION}）")
    tables = {table.name: table for table in _tables()}
    out: dict[str, list[dict]] = {name: [] for name in tables}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SupervisionError(f"导入文件第 {number} 行不是有效的 JSON：{exc.msg}") from exc
        name = record.get("table") if isinstance(record, dict) else None
        row = record.get("row") if isinstance(record, dict) else None
        if name not in tables or not isinstance(row, dict):
            raise SupervisionError(f"导入文件第 {number} 行格式错误：未知的表 {name!r} 或缺少 row")
        unknown = set(row) - set(tables[name].c.keys())
        if unknown:
            raise SupervisionError(f"导入文件第 {number} 行含未知列：{name}.{', '.join(sorted(unknown))}")
        if any(row.get(k) is None for k in KEYS[name]):
            raise SupervisionError(f"导入文件第 {number} 行缺少主键：{name}（{', '.join(KEYS[name])}）")
        out[name].append(row)
    counts = header.get("counts")
    if isinstance(counts, dict):
        for name, rows in out.items():
            if counts.get(name, len(rows)) != len(rows):
                raise SupervisionError(f"导入文件不完整：{name} 应有 {counts[name]} 行，实有 {len(rows)} 行")
    return out


def import_file(
    target: Engine | Connection, user: User, path: Path | str, *, reason: str, page: str = "cli"
) -> dict[str, dict[str, int]]:
    """Load an export file into this warehouse: ``{table: {"imported": n, "identical": m}}``.

    All or nothing: a key that exists here with different values refuses the import (the first few listed).
    """
    text = actions._reason(reason)
    _check_user(user, "导入督察记录")
    data = read_file(path)
    at = actions._now()
    result: dict[str, dict[str, int]] = {}
    with actions._transaction(target) as conn:
        conflicts: list[str] = []
        plan: list[tuple[sa.Table, list[dict]]] = []
        for table in _tables():
            keys = KEYS[table.name]
            columns = list(table.c.keys())
            existing = {tuple(r[k] for k in keys): r for r in _rows(conn, table)}
            new_rows, same = [], 0
            seen: set[tuple] = set()
            for row in data[table.name]:
                full = {c: row.get(c) for c in columns}
                key = tuple(full[k] for k in keys)
                if key in seen:
                    conflicts.append(f"{table.name} {'/'.join(map(str, key))}（文件中重复）")
                    continue
                seen.add(key)
                have = existing.get(key)
                if have is None:
                    new_rows.append(full)
                elif have == full:
                    same += 1
                else:
                    diff = sorted(c for c in columns if have.get(c) != full.get(c))
                    conflicts.append(f"{table.name} {'/'.join(map(str, key))}（{', '.join(diff)} 不同）")
            plan.append((table, new_rows))
            result[table.name] = {"imported": len(new_rows), "identical": same}
        if conflicts:
            shown = "；".join(conflicts[:5]) + (f"；等共 {len(conflicts)} 处" if len(conflicts) > 5 else "")
            raise SupervisionError(f"导入被拒绝：以下记录在本数据仓库中已存在且内容不同，不会覆盖：{shown}")
        for table, rows in plan:
            if not rows:
                continue
            try:
                values = [{c: _db_value(table.c[c], v) for c, v in r.items()} for r in rows]
                with conn.begin_nested():
                    conn.execute(sa.insert(table), values)
            except (ValueError, TypeError, sa.exc.DBAPIError) as exc:
                first = str(getattr(exc, "orig", exc)).splitlines()[0] if str(exc) else type(exc).__name__
                raise SupervisionError(f"导入失败：{table.name} 的记录无法写入（{first}），未写入任何记录") from exc
        if conn.dialect.name == "postgresql":
            for name, column in SERIAL.items():
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{name}', '{column}'), "
                    f"COALESCE((SELECT MAX({column}) FROM {name}), 0) + 1, false)"
                )
        total = sum(r["imported"] for r in result.values())
        actions._audit(conn, user, page, "supervision:import", f"{Path(path).name}（{total} 行）", text, at)
        if result["sup_spotcheck_items"]["imported"] or result["sup_spotcheck_points"]["imported"]:
            spotcheck_rules.sync(conn)  # the SPOT-CHECK findings of the imported reviews, at once
        if total:
            actions._rescore(conn)
    return result


def orphaned_keys(target: Engine | Connection) -> list[str]:
    """The judged finding keys that name no finding of this warehouse (after an import: not re-attached)."""
    sql = (
        "SELECT s.finding_key FROM sup_finding_state s WHERE NOT EXISTS "
        "(SELECT 1 FROM findings f WHERE f.finding_key = s.finding_key) AND NOT EXISTS "
        "(SELECT 1 FROM excused_findings x WHERE x.finding_key = s.finding_key) ORDER BY s.finding_key"
    )
    with actions._reading(target) as conn:
        return [r[0] for r in conn.exec_driver_sql(sql)]
