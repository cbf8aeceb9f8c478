"""The source-system contract of ``shared/spec/sources.md`` as data.

Every reader, the staging layer, the warehouse schema and the demo generator
take table and column definitions from here, so the contract lives in one
place.  Column kinds:

``str``   code or text, never parsed as a number (leading zeros matter)
``bool``  0/1 flag
``int``   integer
``dt``    local wall-clock datetime ``YYYY-MM-DD HH:MM:SS``
``date``  calendar date ``YYYY-MM-DD``
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "str"  # str | bool | int | dt | date
    required: bool = False  # null/empty is a contract breach
    choices: tuple[str, ...] | None = None  # allowed values for enumerations
    max_len: int | None = None  # longer text is quarantined (oversized field)


@dataclass(frozen=True)
class Table:
    name: str
    system: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    optional: bool = False  # the system may not provide it
    # (column, referenced table, referenced column): a value not found there is
    # quarantined ("unknown unit", "unknown officer" ...); nulls pass.
    refs: tuple[tuple[str, str, str], ...] = ()
    # (start column, end column): end before start is quarantined
    order: tuple[tuple[str, str], ...] = ()
    extra: dict = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def has_updated_at(self) -> bool:
        return "updated_at" in self.column_names

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


TEXT = 2000  # generous limit for free text fields
CODE = 64  # limit for codes and keys

S = lambda n, **kw: Column(n, "str", max_len=kw.pop("max_len", CODE), **kw)  # noqa: E731
T = lambda n, **kw: Column(n, "str", max_len=TEXT, **kw)  # noqa: E731
B = lambda n, **kw: Column(n, "bool", **kw)  # noqa: E731
DT = lambda n, **kw: Column(n, "dt", **kw)  # noqa: E731

LEVELS = ("province", "city", "county", "station")  # province: the root of a pooled province (issue 18)
PROCEDURES = ("simple", "general")
CASE_SOURCES = ("ex_officio", "complaint", "report", "assigned", "transferred", "other")
DELIVERY_METHODS = ("direct", "left", "mail", "entrusted", "public_notice")
DEVICE_KINDS = ("bodycam", "camera", "phone")
DEVICE_STATUSES = ("in_use", "spare", "repair", "scrapped", "lost")
ACCESS_ACTIONS = ("view", "copy", "download", "external", "delete")
OFFICER_KINDS = ("police", "auxiliary")
OFFICER_ROLES = ("handler", "assistant")
# Ledger workbook status words (sources.md section 6) -> contract status
LEDGER_STATUS = {"在用": "in_use", "备用": "spare", "维修": "repair", "报废": "scrapped", "丢失": "lost"}
LEDGER_COLUMNS = {"设备编号": "device_sn", "使用人警号": "police_no", "领用时间": "from_at", "状态": "status"}

TABLES: dict[str, Table] = {}


def _t(table: Table) -> None:
    TABLES[table.name] = table


# 1. Organisation directory (system "org")
_t(
    Table(
        "org_units",
        "org",
        ("unit_code",),
        (
            S("unit_code", required=True),
            T("name", required=True),
            S("parent_code"),
            S("level", required=True, choices=LEVELS),
        ),
        refs=(("parent_code", "org_units", "unit_code"),),
    )
)
_t(
    Table(
        "officers",
        "org",
        ("police_no",),
        (
            S("police_no", required=True),
            T("name", required=True),
            S("unit_code", required=True),
            S("kind", required=True, choices=OFFICER_KINDS),
            B("leader", required=True),
            B("active", required=True),
        ),
        refs=(("unit_code", "org_units", "unit_code"),),
    )
)

# 2. Case-handling system (system "cases")
_t(
    Table(
        "cases",
        "cases",
        ("case_no",),
        (
            S("case_no", required=True),
            S("unit_code", required=True),
            T("title"),
            S("procedure", required=True, choices=PROCEDURES),
            S("source", required=True, choices=CASE_SOURCES),
            B("is_major", required=True),
            B("emergency_start", required=True),
            DT("registered_at", required=True),
            DT("started_at"),
            DT("start_approved_at"),
            B("filed"),
            DT("decided_at"),
            DT("closed_at"),
            B("enforcement_power", required=True),
            DT("updated_at", required=True),
        ),
        refs=(("unit_code", "org_units", "unit_code"),),
    )
)
_t(
    Table(
        "case_officers",
        "cases",
        ("case_no", "police_no"),
        (
            S("case_no", required=True),
            S("police_no", required=True),
            S("role", required=True, choices=OFFICER_ROLES),
        ),
        refs=(("case_no", "cases", "case_no"), ("police_no", "officers", "police_no")),
    )
)
_t(
    Table(
        "case_actions",
        "cases",
        ("action_id",),
        (
            S("action_id", required=True),
            S("case_no", required=True),
            S("action_type", required=True),
            DT("started_at", required=True),
            DT("ended_at", required=True),
            S("police_no"),
            DT("updated_at", required=True),
        ),
        refs=(("case_no", "cases", "case_no"), ("police_no", "officers", "police_no")),
        order=(("started_at", "ended_at"),),
    )
)
_t(
    Table(
        "case_documents",
        "cases",
        ("doc_id",),
        (
            S("doc_id", required=True),
            S("case_no", required=True),
            S("action_id"),
            S("doc_type", required=True),
            DT("created_at", required=True),
            S("drafter_no"),
            S("reviewer_no"),
            S("approver_no"),
            T("legal_basis"),
            B("party_signed"),
            B("party_refused"),
            B("officer_signed"),
            B("witness_signed"),
            DT("updated_at", required=True),
        ),
        refs=(("case_no", "cases", "case_no"), ("action_id", "case_actions", "action_id")),
    )
)
_t(
    Table(
        "deliveries",
        "cases",
        ("delivery_id",),
        (
            S("delivery_id", required=True),
            S("doc_id", required=True),
            S("method", required=True, choices=DELIVERY_METHODS),
            DT("delivered_at", required=True),
            B("receipt_signed"),
            B("postal_receipt"),
            T("reason"),
            T("entrustee"),
            T("note"),
        ),
        refs=(("doc_id", "case_documents", "doc_id"),),
    )
)

# 3. Dispatch system (system "dispatch")
_t(
    Table(
        "incidents",
        "dispatch",
        ("incident_no",),
        (
            S("incident_no", required=True),
            S("unit_code", required=True),
            T("category"),
            DT("received_at", required=True),
            DT("arrived_at"),
            DT("ended_at"),
            B("on_site", required=True),
            S("case_no"),
            DT("updated_at", required=True),
        ),
        refs=(("unit_code", "org_units", "unit_code"),),
        order=(("arrived_at", "ended_at"),),
    )
)
_t(
    Table(
        "incident_officers",
        "dispatch",
        ("incident_no", "police_no"),
        (
            S("incident_no", required=True),
            S("police_no", required=True),
        ),
        refs=(("incident_no", "incidents", "incident_no"), ("police_no", "officers", "police_no")),
    )
)
_t(
    Table(
        "interruption_reports",
        "dispatch",
        ("report_id",),
        (
            S("report_id", required=True),
            S("incident_no", required=True),
            S("police_no", required=True),
            T("reason"),
            DT("reported_at", required=True),
        ),
        refs=(("incident_no", "incidents", "incident_no"), ("police_no", "officers", "police_no")),
    )
)

# 4. Body-worn camera media platform (system "media")
_t(
    Table(
        "devices",
        "media",
        ("device_sn",),
        (
            S("device_sn", required=True),
            S("kind", required=True, choices=DEVICE_KINDS),
            T("model"),
            S("unit_code", required=True),
            S("status", required=True, choices=DEVICE_STATUSES),
            DT("status_since", required=True),
            Column("purchased_at", "date"),
        ),
        refs=(("unit_code", "org_units", "unit_code"),),
    )
)
_t(
    Table(
        "device_assignments",
        "media",
        ("device_sn", "from_at"),
        (
            S("device_sn", required=True),
            S("police_no", required=True),
            DT("from_at", required=True),
            DT("to_at"),
        ),
        refs=(("device_sn", "devices", "device_sn"), ("police_no", "officers", "police_no")),
        order=(("from_at", "to_at"),),
    )
)
_t(
    Table(
        "unit_admins",
        "media",
        ("unit_code", "police_no", "from_at"),
        (
            S("unit_code", required=True),
            S("police_no", required=True),
            DT("from_at", required=True),
            DT("to_at"),
        ),
        refs=(("unit_code", "org_units", "unit_code"), ("police_no", "officers", "police_no")),
        order=(("from_at", "to_at"),),
    )
)
_t(
    Table(
        "clips",
        "media",
        ("clip_id",),
        (
            S("clip_id", required=True),
            S("device_sn", required=True),
            S("police_no"),
            DT("started_at", required=True),
            DT("ended_at", required=True),
            Column("size_bytes", "int"),
            S("sha256", max_len=128),
            DT("imported_at"),
            T("file_path"),
            S("incident_no"),
            S("case_no"),
            B("is_evidence"),
            DT("deleted_at"),
            DT("updated_at", required=True),
        ),
        refs=(("device_sn", "devices", "device_sn"), ("police_no", "officers", "police_no")),
        order=(("started_at", "ended_at"),),
    )
)
_t(
    Table(
        "access_log",
        "media",
        ("log_id",),
        (
            S("log_id", required=True),
            S("clip_id", required=True),
            S("action", required=True, choices=ACCESS_ACTIONS),
            S("user_no"),
            DT("at"),
            T("reason"),
            S("approver_no"),
            DT("approved_at"),
            T("recipient"),
        ),
        refs=(("clip_id", "clips", "clip_id"),),
    )
)

# 5. Service windows (system "windows", optional)
_t(
    Table(
        "service_windows",
        "windows",
        ("unit_code", "window_id"),
        (
            S("unit_code", required=True),
            S("window_id", required=True),
            B("cctv_installed"),
            B("cctv_recording"),
        ),
        optional=True,
        refs=(("unit_code", "org_units", "unit_code"),),
    )
)

# 6. Equipment ledger workbooks (system "ledgers", optional): one row per
# workbook row, unit_code taken from the file name.
_t(
    Table(
        "ledger_entries",
        "ledgers",
        ("unit_code", "device_sn"),
        (
            S("unit_code", required=True),
            S("device_sn", required=True),
            S("police_no"),
            DT("from_at"),
            S("status", choices=DEVICE_STATUSES),
        ),
        optional=True,
        refs=(("unit_code", "org_units", "unit_code"),),
    )
)

SYSTEMS: dict[str, list[str]] = {}
for _tab in TABLES.values():
    SYSTEMS.setdefault(_tab.system, []).append(_tab.name)
OPTIONAL_SYSTEMS = ("windows", "ledgers")

# Load order: a table's references are loaded before it.
LOAD_ORDER: list[str] = list(TABLES)
