"""``sources.yaml`` parsing and validation (shared/spec/sources.md, "Declaring sources").

``load(path)`` returns a :class:`SourcesConfig`: one :class:`TableSource` per
contract table that a declared system provides, with relative paths and
``sqlite:///relative`` URLs resolved against the folder of the YAML file.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from etl.errors import ConfigError
from etl.sources.contract import OPTIONAL_SYSTEMS, SYSTEMS, TABLES

CONTRACT_DT_FORMAT = "%Y-%m-%d %H:%M:%S"
FORMATS = ("csv", "xlsx")
_SYSTEM_KEYS = {"url", "folder", "format", "encoding", "datetime_format"}
_TABLE_KEYS = {"name", "columns", "datetime_format"}


@dataclass(frozen=True)
class SystemSource:
    """One declared source system: a database URL or a folder of CSV/XLSX files."""

    name: str
    url: str | None = None
    folder: Path | None = None
    format: str | None = None  # csv | xlsx for folders; None for url
    encoding: str = "utf-8"
    datetime_format: str | None = None

    @property
    def kind(self) -> str:
        """``url``, ``csv``, ``xlsx`` or ``ledger`` (the ledger workbook folder)."""
        if self.url:
            return "url"
        if self.name == "ledgers":
            return "ledger"
        return self.format or "csv"

    @property
    def location(self) -> str:
        """Where it lives, for messages (URL without password, or folder)."""
        if self.url:
            return _hide_password(self.url)
        return str(self.folder)


@dataclass(frozen=True)
class TableSource:
    """Where one contract table comes from and how its columns are named there."""

    table: str  # contract table name
    system: SystemSource
    name: str  # table name in the database, or file stem in the folder
    columns: dict[str, str] = field(default_factory=dict)  # source column -> contract column
    datetime_format: str | None = None  # table override of the system's format

    @property
    def dt_format(self) -> str:
        return self.datetime_format or self.system.datetime_format or CONTRACT_DT_FORMAT

    @property
    def label(self) -> str:
        """``system.table`` for messages."""
        return f"{self.system.name}.{self.table}"

    def source_column(self, contract_column: str) -> str:
        """The source's name for a contract column (the contract name when not renamed)."""
        for src, dst in self.columns.items():
            if dst == contract_column:
                return src
        return contract_column


@dataclass(frozen=True)
class SourcesConfig:
    path: Path
    version: int
    media_root: Path | None
    systems: dict[str, SystemSource]
    tables: dict[str, TableSource]  # contract table -> source, in contract load order
    sources_hash: str


def _hide_password(url: str) -> str:
    try:
        import sqlalchemy as sa

        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a bad URL is reported when it is opened
        return url


def resolve_url(url: str, base: Path) -> str:
    """``sqlite:///relative/path`` relative to ``base``; every other URL unchanged."""
    prefix = "sqlite:///"
    if url.startswith(prefix):
        rest = url[len(prefix) :]
        path_part, sep, query = rest.partition("?")
        if path_part and path_part != ":memory:" and not Path(path_part).is_absolute():
            return prefix + str((base / path_part).resolve()) + sep + query
    return url


def _str(value, what: str) -> str:  # noqa: ANN001
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"数据源配置错误：{what} 应为非空文本")
    return value.strip()


def _parse_system(name: str, spec, base: Path) -> SystemSource:  # noqa: ANN001
    if not isinstance(spec, dict):
        raise ConfigError(f"数据源配置错误：系统 {name} 的声明应为映射（url 或 folder）")
    unknown = set(spec) - _SYSTEM_KEYS
    if unknown:
        raise ConfigError(f"数据源配置错误：系统 {name} 含未知字段 {', '.join(sorted(map(str, unknown)))}")
    url, folder = spec.get("url"), spec.get("folder")
    if bool(url) == bool(folder):
        raise ConfigError(f"数据源配置错误：系统 {name} 须且只能声明 url 或 folder 之一")
    encoding = _str(spec.get("encoding", "utf-8"), f"{name}.encoding")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(f"数据源配置错误：系统 {name} 的编码 {encoding} 无法识别") from None
    dt_format = spec.get("datetime_format")
    if dt_format is not None:
        dt_format = _str(dt_format, f"{name}.datetime_format")
    if url:
        if spec.get("format") is not None:
            raise ConfigError(f"数据源配置错误：系统 {name} 使用 url 时不应声明 format")
        return SystemSource(
            name, url=resolve_url(_str(url, f"{name}.url"), base), encoding=encoding, datetime_format=dt_format
        )
    fmt = spec.get("format", "xlsx" if name == "ledgers" else "csv")
    if fmt not in FORMATS or (name == "ledgers" and fmt != "xlsx"):
        raise ConfigError(f"数据源配置错误：系统 {name} 的 format 应为 csv 或 xlsx（台账为 xlsx），而非 {fmt}")
    path = Path(_str(folder, f"{name}.folder")).expanduser()
    if not path.is_absolute():
        path = (base / path).resolve()
    return SystemSource(name, folder=path, format=fmt, encoding=encoding, datetime_format=dt_format)


def _parse_table(table: str, spec, system: SystemSource) -> TableSource:  # noqa: ANN001
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ConfigError(f"数据源配置错误：tables.{table} 应为映射")
    unknown = set(spec) - _TABLE_KEYS
    if unknown:
        raise ConfigError(f"数据源配置错误：tables.{table} 含未知字段 {', '.join(sorted(map(str, unknown)))}")
    name = _str(spec.get("name", table), f"tables.{table}.name")
    columns = spec.get("columns") or {}
    if not isinstance(columns, dict):
        raise ConfigError(f"数据源配置错误：tables.{table}.columns 应为“源列名: 标准列名”映射")
    contract_cols = set(TABLES[table].column_names)
    mapped: dict[str, str] = {}
    for src, dst in columns.items():
        src_s, dst_s = str(src).strip(), str(dst).strip()
        if dst_s not in contract_cols:
            raise ConfigError(f"数据源配置错误：tables.{table}.columns 把 {src_s} 映射到未知的标准列 {dst_s}")
        if dst_s in mapped.values():
            raise ConfigError(f"数据源配置错误：tables.{table}.columns 中标准列 {dst_s} 被映射了两次")
        mapped[src_s] = dst_s
    dt_format = spec.get("datetime_format")
    if dt_format is not None:
        dt_format = _str(dt_format, f"tables.{table}.datetime_format")
    return TableSource(table, system, name, mapped, dt_format)


def parse(data, path: Path, sources_hash: str = "") -> SourcesConfig:  # noqa: ANN001
    """Validate an already loaded YAML document; ``path`` is the file it came from."""
    base = path.parent.resolve()
    if not isinstance(data, dict):
        raise ConfigError(f"数据源配置错误：{path.name} 顶层应为映射")
    unknown = set(data) - {"version", "media_root", "systems", "tables"}
    if unknown:
        raise ConfigError(f"数据源配置错误：未知的顶层字段 {', '.join(sorted(map(str, unknown)))}")
    version = data.get("version")
    if version != 1:
        raise ConfigError(f"数据源配置错误：version 应为 1，而非 {version!r}")
    media_root = data.get("media_root")
    media_path: Path | None = None
    if media_root is not None:
        media_path = Path(_str(media_root, "media_root")).expanduser()
        if not media_path.is_absolute():
            media_path = (base / media_path).resolve()
    systems_spec = data.get("systems")
    if not isinstance(systems_spec, dict):
        raise ConfigError("数据源配置错误：缺少 systems")
    unknown = set(systems_spec) - set(SYSTEMS)
    if unknown:
        raise ConfigError(
            f"数据源配置错误：未知的源系统 {', '.join(sorted(map(str, unknown)))}（可用：{', '.join(SYSTEMS)}）"
        )
    missing = [s for s in SYSTEMS if s not in OPTIONAL_SYSTEMS and s not in systems_spec]
    if missing:
        raise ConfigError(f"数据源配置错误：缺少必需的源系统 {', '.join(missing)}")
    systems = {name: _parse_system(name, spec, base) for name, spec in systems_spec.items()}
    tables_spec = data.get("tables") or {}
    if not isinstance(tables_spec, dict):
        raise ConfigError("数据源配置错误：tables 应为映射")
    unknown = set(tables_spec) - set(TABLES)
    if unknown:
        raise ConfigError(f"数据源配置错误：tables 中有未知的表 {', '.join(sorted(map(str, unknown)))}")
    tables: dict[str, TableSource] = {}
    for name, table in TABLES.items():
        system = systems.get(table.system)
        if system is None:
            if name in tables_spec:
                raise ConfigError(f"数据源配置错误：tables.{name} 所属的系统 {table.system} 未声明")
            continue
        tables[name] = _parse_table(name, tables_spec.get(name), system)
    return SourcesConfig(
        path=path.resolve(),
        version=version,
        media_root=media_path,
        systems=systems,
        tables=tables,
        sources_hash=sources_hash,
    )


def load(path: Path | str) -> SourcesConfig:
    """Read and validate ``sources.yaml``; raises ConfigError with a one-line Chinese message."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"无法读取数据源配置文件 {path}：{exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(raw.decode("utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"数据源配置文件 {path.name} 不是有效的 YAML：{first}") from None
    return parse(data, path, hashlib.sha256(raw).hexdigest())
