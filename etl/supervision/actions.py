"""Reviews (复核), appeals (申诉) and Art. 17 explanations judged: the writes the pages and the CLI share.

Every function takes a warehouse ``Engine`` (a page: the function opens and commits one transaction) or a
``Connection`` (a caller's transaction: the function works inside a savepoint of it, or in a transaction of
its own when none is open, so a refusal never leaves half a write behind).  Each one, in this order:

1. checks: a non-empty reason (and a known verdict / category), the user's role, the object is known, the object
   lies in the user's scope (``etl.warehouse.scope``), the record is not stale (``expected_version``: the version
   the page showed; None = the current one, the CLI's case) -- a refusal raises ``SupervisionError`` (or
   ``StaleWriteError``) with a Chinese message and writes nothing;
2. writes the state row with a guarded ``UPDATE ... WHERE version = :expected`` (a first state row: an INSERT
   whose primary-key conflict is the guard), and the history row;
3. appends the audit row (``etl.warehouse.audit.record``: who, role, scope, page, action, object, reason);
4. recomputes metrics and scores (``etl.supervision.rescore``) when what counts changed, so the verdict is
   effective at once, without an ETL run.

A finding's state is ``open`` without a state row (version 0); the first write makes version 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from etl import periods
from etl.errors import StaleWriteError, SupervisionError
from etl.rules import config as rules_config
from etl.users import User
from etl.warehouse import audit
from etl.warehouse.schema import (
    sup_appeals,
    sup_excuse_history,
    sup_excuse_reviews,
    sup_finding_state,
    sup_publications,
    sup_reviews,
)
from etl.warehouse.scope import ScopeError, check_unit

VERDICTS = ("confirm", "exempt", "reopen")
VERDICT_STATE = {"confirm": "confirmed", "exempt": "exempted", "reopen": "open"}
CATEGORIES = ("不可抗力", "数据错误", "已书面说明", "其他")
APPEAL_DECISIONS = {"uphold": "upheld", "upheld": "upheld", "reject": "rejected", "rejected": "rejected"}
EXCUSE_VERDICTS = {"accept": "accepted", "accepted": "accepted", "reject": "rejected", "rejected": "rejected"}
STATE_NAMES = {"open": "待复核", "confirmed": "已确认", "exempted": "已豁免"}
DECISION_NAMES = {"upheld": "申诉成立", "rejected": "申诉驳回"}
EXCUSE_NAMES = {"accepted": "已采纳", "rejected": "不予采纳"}
REVIEWER_ROLES = ("legal",)  # review, decide appeals, judge excuses
APPEAL_ROLES = ("unit_admin",)  # file appeals


def _now() -> datetime:
    """The time of a write (whole seconds); tests replace it to step past an appeal window."""
    return datetime.now().replace(microsecond=0)


# --- transactions ------------------------------------------------------------------------------


@contextlib.contextmanager
def _transaction(target: Engine | Connection) -> Iterator[Connection]:
    """One transaction for one action: a new one on an engine, a savepoint inside a caller's open transaction."""
    if isinstance(target, Engine):
        with target.begin() as conn:
            yield conn
    elif target.in_transaction():
        with target.begin_nested():
            yield target
    else:
        with target.begin():
            yield target


@contextlib.contextmanager
def _reading(target: Engine | Connection) -> Iterator[Connection]:
    if isinstance(target, Engine):
        with target.connect() as conn:
            yield conn
    else:
        yield target


# --- checks ------------------------------------------------------------------------------------


def _reason(reason: str | None) -> str:
    text = (reason or "").strip() if isinstance(reason, str) else ""
    if not text:
        raise SupervisionError("请填写理由：每一项复核、申诉和发布都必须说明理由")
    return text


def _role(user: User, roles: tuple[str, ...], what: str) -> None:
    if user is None or user.role not in roles:
        raise SupervisionError(f"当前用户无权{what}（仅限{'、'.join(_ROLE_WORDS[r] for r in roles)}）")


_ROLE_WORDS = {"legal": "法制部门", "unit_admin": "单位管理员"}


def _scope(user: User, unit_code: str | None, what: str) -> None:
    try:
        check_unit(user.scope, unit_code, f"{what}不在当前用户的管辖范围内")
    except ScopeError as exc:
        raise SupervisionError(str(exc)) from exc


def _stale(current: int, expected: int | None, what: str) -> int:
    """The version to guard the write with; StaleWriteError when the page showed another one."""
    if expected is None:
        return current
    if int(expected) != current:
        raise StaleWriteError(f"{what}已被他人更新（页面显示第 {int(expected)} 版，当前第 {current} 版），请刷新后重试")
    return current


# --- reads -------------------------------------------------------------------------------------

_FINDING_SQL = {
    "findings": "SELECT rule_id, unit_code, month, detail FROM findings WHERE finding_key = :k",
    "excused_findings": "SELECT rule_id, unit_code, month, detail, incident_no FROM excused_findings "
    "WHERE finding_key = :k",
}


def _finding(conn: Connection, key: str) -> dict | None:
    """The finding ``key`` as it is now (findings, else the excused findings), or None when it is gone."""
    for table, sql in _FINDING_SQL.items():
        row = conn.execute(sa.text(sql), {"k": key}).mappings().first()
        if row is not None:
            return {**dict(row), "table": table}
    return None


def _state_row(conn: Connection, key: str) -> dict | None:
    row = conn.execute(sa.select(sup_finding_state).where(sup_finding_state.c.finding_key == key)).mappings().first()
    return None if row is None else dict(row)


def _latest_appeal(conn: Connection, key: str) -> dict | None:
    row = (
        conn.execute(
            sa.select(sup_appeals).where(sup_appeals.c.finding_key == key).order_by(sup_appeals.c.appeal_id.desc())
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def state_of(target: Engine | Connection, finding_key: str) -> dict:
    """What a page shows of a finding and passes back as ``expected_version``.

    ``{finding_key, known, orphaned, state, version, category, reason, updated_by, updated_at, appeal}``:
    ``known`` the finding exists now (findings or excused findings); ``orphaned`` judged but gone from the
    sources; ``version`` 0 while never judged; ``appeal`` the latest appeal (appeal_id, decision, version, late,
    filed_by, filed_at) or None.
    """
    with _reading(target) as conn:
        finding = _finding(conn, finding_key)
        row = _state_row(conn, finding_key)
        appeal = _latest_appeal(conn, finding_key)
    return {
        "finding_key": finding_key,
        "known": finding is not None,
        "orphaned": finding is None and (row is not None or appeal is not None),
        "state": row["state"] if row else "open",
        "version": int(row["version"]) if row else 0,
        "category": row["category"] if row else None,
        "reason": row["reason"] if row else None,
        "updated_by": row["updated_by"] if row else None,
        "updated_at": row["updated_at"] if row else None,
        "appeal": None
        if appeal is None
        else {k: appeal[k] for k in ("appeal_id", "decision", "version", "late", "filed_by", "filed_at")},
    }


def excuse_state_of(target: Engine | Connection, incident_no: str) -> dict:
    """The judgement of an event's interruption report: ``{incident_no, verdict (None: not judged), version}``."""
    with _reading(target) as conn:
        row = (
            conn.execute(sa.select(sup_excuse_reviews).where(sup_excuse_reviews.c.incident_no == incident_no))
            .mappings()
            .first()
        )
    return {
        "incident_no": incident_no,
        "verdict": row["verdict"] if row else None,
        "version": int(row["version"]) if row else 0,
        "report_id": row["report_id"] if row else None,
    }


# --- writes ------------------------------------------------------------------------------------


def _audit(conn: Connection, user: User, page: str, action: str, obj: str, reason: str, at: datetime) -> None:
    audit.record(conn, user, page, action, obj, reason, at)


def _rescore(conn: Connection) -> None:
    """Metrics and scores again from the findings that count now (etl.supervision.rescore)."""
    from etl.supervision.rescore import rescore  # imported here: rescore pulls in the whole scoring package

    rescore(conn)


def _write_state(
    conn: Connection,
    key: str,
    new_state: str,
    *,
    category: str | None,
    reason: str,
    user: User,
    at: datetime,
    guard: int,
    copy: dict,
) -> None:
    """Set the state row of ``key`` if its version is still ``guard`` (0: no row yet); StaleWriteError if not."""
    values = {
        "state": new_state,
        "category": category,
        "reason": reason,
        "updated_by": user.username,
        "updated_at": at,
        "rule_id": copy.get("rule_id"),
        "unit_code": copy.get("unit_code"),
        "month": copy.get("month"),
        "detail": copy.get("detail"),
    }
    stale = StaleWriteError(f"问题 {key} 已被他人更新，请刷新后重试")
    if guard == 0:
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(sup_finding_state), {"finding_key": key, "version": 1, **values})
        except sa.exc.IntegrityError as exc:
            raise stale from exc
        return
    result = conn.execute(
        sa.update(sup_finding_state)
        .where(sup_finding_state.c.finding_key == key, sup_finding_state.c.version == guard)
        .values(version=sup_finding_state.c.version + 1, **values)
    )
    if result.rowcount != 1:
        raise stale


def _copy_of(finding: dict | None, row: dict | None, key: str, unit_code: str | None = None) -> dict:
    """The finding's columns kept on its state row: as it is now, else as last kept (an orphan)."""
    if finding is not None:
        return finding
    if row is not None:
        return row
    return {"rule_id": key.split(":", 1)[0], "unit_code": unit_code, "month": None, "detail": None}


def _review_one(
    conn: Connection,
    user: User,
    key: str,
    verdict: str,
    *,
    reason: str,
    category: str | None,
    expected_version: int | None,
    at: datetime,
    source: str = "review",
) -> tuple[int, bool]:
    """One review verdict inside ``conn``'s transaction (checks already done for reason/role/verdict).

    Returns (review_id, whether what counts changed).
    """
    key = (key or "").strip()
    finding = _finding(conn, key)
    row = _state_row(conn, key)
    if finding is None and row is None:
        raise SupervisionError(f"未知的问题编号：{key or '（空）'}")
    unit_code = (finding or row)["unit_code"]
    _scope(user, unit_code, f"问题 {key} ")
    current = int(row["version"]) if row else 0
    guard = _stale(current, expected_version, f"问题 {key} ")
    old_state = row["state"] if row else "open"
    new_state = VERDICT_STATE[verdict]
    if new_state == old_state and (new_state != "exempted" or (row and row["category"] == category)):
        raise SupervisionError(f"问题 {key} 已是「{STATE_NAMES[old_state]}」状态，无需重复操作")
    _write_state(
        conn,
        key,
        new_state,
        category=category,
        reason=reason,
        user=user,
        at=at,
        guard=guard,
        copy=_copy_of(finding, row, key),
    )
    review_id = conn.execute(
        sa.insert(sup_reviews),
        {
            "finding_key": key,
            "verdict": verdict,
            "category": category,
            "reason": reason,
            "by_user": user.username,
            "role": user.role,
            "at": at,
            "source": source,
        },
    ).inserted_primary_key[0]
    return int(review_id), (old_state == "exempted") != (new_state == "exempted")


def _verdict_args(verdict: str, category: str | None) -> tuple[str, str | None]:
    verdict = (verdict or "").strip().lower()
    if verdict not in VERDICTS:
        raise SupervisionError(
            f"复核结论应为 confirm（确认）、exempt（豁免）或 reopen（重新打开）：{verdict or '（空）'}"
        )
    category = (category or "").strip() or None
    if verdict == "exempt" and category is None:
        raise SupervisionError(f"豁免必须选择理由类别：{'、'.join(CATEGORIES)}")
    if category is not None and category not in CATEGORIES:
        raise SupervisionError(f"理由类别应为 {'、'.join(CATEGORIES)} 之一：{category}")
    return verdict, category


def review(
    target: Engine | Connection,
    user: User,
    finding_key: str,
    verdict: str,
    *,
    reason: str,
    category: str | None = None,
    expected_version: int | None = None,
    page: str = "cli",
) -> int:
    """A review verdict (confirm / exempt / reopen) on one finding by the legal department; returns the review_id.

    ``category`` (不可抗力 / 数据错误 / 已书面说明 / 其他) is required for ``exempt``.  The finding must exist now
    (findings or excused findings) unless it was judged before (an orphan may be judged again).
    """
    return review_many(
        target,
        user,
        [finding_key],
        verdict,
        reason=reason,
        category=category,
        expected_versions=None if expected_version is None else [expected_version],
        page=page,
    )[0]


def review_many(
    target: Engine | Connection,
    user: User,
    finding_keys: Sequence[str],
    verdict: str,
    *,
    reason: str,
    category: str | None = None,
    expected_versions: Sequence[int | None] | Mapping[str, int | None] | None = None,
    page: str = "cli",
) -> list[int]:
    """The same verdict, category and reason on several findings: all or nothing, in one transaction.

    ``expected_versions``: per key the version the page showed (a sequence in the order of ``finding_keys``, or
    a mapping key -> version); None for the current ones.  One audit row per finding; the review_ids in order.
    """
    text = _reason(reason)
    _role(user, REVIEWER_ROLES, "复核问题")
    verdict, category = _verdict_args(verdict, category)
    keys = [str(k).strip() for k in (finding_keys or [])]
    if not keys:
        raise SupervisionError("请至少选择一个问题")
    if len(set(keys)) != len(keys):
        raise SupervisionError("所选问题中有重复的编号")
    if expected_versions is None:
        expected: list[int | None] = [None] * len(keys)
    elif isinstance(expected_versions, Mapping):
        expected = [expected_versions.get(k) for k in keys]
    else:
        expected = list(expected_versions)
        if len(expected) != len(keys):
            raise SupervisionError("页面版本与所选问题的数量不一致，请刷新后重试")
    at = _now()
    ids: list[int] = []
    changed = False
    with _transaction(target) as conn:
        for key, version in zip(keys, expected, strict=True):
            review_id, counts = _review_one(
                conn, user, key, verdict, reason=text, category=category, expected_version=version, at=at
            )
            ids.append(review_id)
            changed |= counts
        for key in keys:
            _audit(conn, user, page, f"review:{verdict}", key, _with_category(text, category), at)
        if changed:
            _rescore(conn)
    return ids


def _with_category(reason: str, category: str | None) -> str:
    return f"[{category}] {reason}" if category else reason


# --- appeals -----------------------------------------------------------------------------------


def _appeal_window(conn: Connection, month: str | None, at: datetime) -> int:
    """0: the finding's period is not published; 1: published, within appeal_days; SupervisionError after."""
    if not month:
        return 0
    rows = conn.execute(sa.select(sup_publications.c.period, sup_publications.c.published_at)).all()
    published = [
        (str(period), _as_datetime(when))
        for period, when in rows
        if _covers(str(period), str(month)) and when is not None
    ]
    if not published:
        return 0
    period, latest = max(published, key=lambda pw: pw[1])
    days = rules_config.load()["params"].get("appeal_days", 10)
    if at > latest + timedelta(days=float(days)):
        raise SupervisionError(f"申诉期已过：{period} 已于 {latest:%Y-%m-%d %H:%M} 发布，发布后 {days:g} 天内可以申诉")
    return 1


def _covers(period: str, month: str) -> bool:
    try:
        return month in periods.parse(period).months
    except periods.PeriodError:
        return False


def _as_datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.strptime(str(value)[:19], "%Y-%m-%d %H:%M:%S")


def file_appeal(target: Engine | Connection, user: User, finding_key: str, *, reason: str, page: str = "cli") -> int:
    """A unit administrator appeals an open finding of its scope; returns the appeal_id.

    Refused: a finding not open (already confirmed or exempted), one with a pending appeal, and once its period
    is published unless within ``appeal_days`` (config/rules.yaml) of the latest publication of a period
    containing the finding's month (then the appeal is marked late).
    """
    text = _reason(reason)
    _role(user, APPEAL_ROLES, "提出申诉")
    key = (finding_key or "").strip()
    at = _now()
    with _transaction(target) as conn:
        finding = _finding(conn, key)
        if finding is None:
            raise SupervisionError(f"未知的问题编号：{key or '（空）'}")
        _scope(user, finding["unit_code"], f"问题 {key} ")
        row = _state_row(conn, key)
        state = row["state"] if row else "open"
        if state != "open":
            raise SupervisionError(f"只能对待复核的问题申诉：问题 {key} 已是「{STATE_NAMES[state]}」")
        pending = conn.execute(
            sa.select(sup_appeals.c.appeal_id).where(sup_appeals.c.finding_key == key, sup_appeals.c.decision.is_(None))
        ).first()
        if pending is not None:
            raise SupervisionError(f"问题 {key} 已有待处理的申诉（申诉编号 {pending[0]}）")
        late = _appeal_window(conn, finding.get("month"), at)
        row = {
            "finding_key": key,
            "unit_code": finding["unit_code"],
            "reason": text,
            "filed_by": user.username,
            "filed_at": at,
            "late": late,
            "version": 1,
        }
        try:  # the partial unique index ux_sup_appeals_pending: one pending appeal per finding, even when racing
            with conn.begin_nested():
                appeal_id = conn.execute(sa.insert(sup_appeals), row).inserted_primary_key[0]
        except sa.exc.IntegrityError as exc:
            raise StaleWriteError(f"问题 {key} 已有待处理的申诉，请刷新后查看") from exc
        _audit(conn, user, page, "appeal:file", f"{key} #申诉{appeal_id}", text, at)
    return int(appeal_id)


def decide_appeal(
    target: Engine | Connection,
    user: User,
    appeal_id: int,
    verdict: str,
    *,
    reason: str,
    category: str | None = None,
    expected_version: int | None = None,
    page: str = "cli",
) -> int:
    """The legal department decides a pending appeal; returns the review_id of the verdict it sets.

    ``verdict`` upheld (or uphold): the finding becomes exempted (category ``其他`` unless given); rejected (or
    reject): confirmed.  The review row has source ``appeal``.  An appeal already decided is refused.
    """
    text = _reason(reason)
    decision = APPEAL_DECISIONS.get((verdict or "").strip().lower())
    if decision is None:
        raise SupervisionError(f"申诉处理结论应为 uphold（成立）或 reject（驳回）：{verdict or '（空）'}")
    category = (category or "").strip() or ("其他" if decision == "upheld" else None)
    if category is not None and category not in CATEGORIES:
        raise SupervisionError(f"理由类别应为 {'、'.join(CATEGORIES)} 之一：{category}")
    _role(user, REVIEWER_ROLES, "处理申诉")
    at = _now()
    with _transaction(target) as conn:
        try:
            appeal_no = int(appeal_id)
        except (TypeError, ValueError):
            raise SupervisionError(f"未知的申诉编号：{appeal_id}") from None
        appeal = conn.execute(sa.select(sup_appeals).where(sup_appeals.c.appeal_id == appeal_no)).mappings().first()
        if appeal is None:
            raise SupervisionError(f"未知的申诉编号：{appeal_id}")
        _scope(user, appeal["unit_code"], f"申诉 {appeal_no} ")
        if appeal["decision"] is not None:
            raise SupervisionError(f"申诉 {appeal_no} 已处理（{DECISION_NAMES[appeal['decision']]}），不能重复处理")
        guard = _stale(int(appeal["version"]), expected_version, f"申诉 {appeal_no} ")
        result = conn.execute(
            sa.update(sup_appeals)
            .where(
                sup_appeals.c.appeal_id == appeal_no, sup_appeals.c.version == guard, sup_appeals.c.decision.is_(None)
            )
            .values(
                decision=decision,
                decision_reason=text,
                decided_by=user.username,
                decided_at=at,
                version=sup_appeals.c.version + 1,
            )
        )
        if result.rowcount != 1:
            raise StaleWriteError(f"申诉 {appeal_no} 已被他人处理，请刷新后重试")
        key = appeal["finding_key"]
        finding = _finding(conn, key)
        row = _state_row(conn, key)
        old_state = row["state"] if row else "open"
        new_state = "exempted" if decision == "upheld" else "confirmed"
        _write_state(
            conn,
            key,
            new_state,
            category=category,
            reason=text,
            user=user,
            at=at,
            guard=int(row["version"]) if row else 0,
            copy=_copy_of(finding, row, key, appeal["unit_code"]),
        )
        review_id = conn.execute(
            sa.insert(sup_reviews),
            {
                "finding_key": key,
                "verdict": "exempt" if decision == "upheld" else "confirm",
                "category": category,
                "reason": text,
                "by_user": user.username,
                "role": user.role,
                "at": at,
                "source": "appeal",
            },
        ).inserted_primary_key[0]
        _audit(conn, user, page, f"appeal:{decision}", f"{key} #申诉{appeal_no}", _with_category(text, category), at)
        if (old_state == "exempted") != (new_state == "exempted"):
            _rescore(conn)
    return int(review_id)


# --- Art. 17 explanations ----------------------------------------------------------------------


def _excused_event(conn: Connection, incident_no: str) -> dict | None:
    """unit_code and report_id of an event with an interruption report (event_coverage, else excused findings)."""
    row = (
        conn.execute(
            sa.text("SELECT unit_code, report_id FROM event_coverage WHERE incident_no = :n AND report_id IS NOT NULL"),
            {"n": incident_no},
        )
        .mappings()
        .first()
    )
    if row is None:
        row = (
            conn.execute(
                sa.text(
                    "SELECT unit_code, report_id FROM excused_findings WHERE incident_no = :n "
                    "AND report_id IS NOT NULL ORDER BY finding_key"
                ),
                {"n": incident_no},
            )
            .mappings()
            .first()
        )
    return None if row is None else dict(row)


def _effective(mode: str, verdict: str | None) -> bool:
    """Whether an excuse holds: ``auto`` unless rejected; ``required`` only once accepted."""
    return verdict == "accepted" if mode == "required" else verdict != "rejected"


def judge_excuse(
    target: Engine | Connection,
    user: User,
    incident_no: str,
    verdict: str,
    *,
    reason: str,
    expected_version: int | None = None,
    page: str = "cli",
) -> int:
    """The legal department accepts or rejects the interruption report of an excused event (Art. 17).

    ``verdict`` accept / reject (or accepted / rejected).  A rejected report makes the event's AV findings count
    (``excused_findings``); with ``excuse_review: required`` only an accepted one excuses.  The event must have a
    report (or have been judged before: an orphan may be judged again).  Returns the id of the history row.
    """
    text = _reason(reason)
    judged = EXCUSE_VERDICTS.get((verdict or "").strip().lower())
    if judged is None:
        raise SupervisionError(f"情况说明审查结论应为 accept（采纳）或 reject（不予采纳）：{verdict or '（空）'}")
    _role(user, REVIEWER_ROLES, "审查情况说明")
    number = (incident_no or "").strip()
    at = _now()
    with _transaction(target) as conn:
        event = _excused_event(conn, number)
        row = (
            conn.execute(sa.select(sup_excuse_reviews).where(sup_excuse_reviews.c.incident_no == number))
            .mappings()
            .first()
        )
        if event is None and row is None:
            raise SupervisionError(f"警情 {number or '（空）'} 没有中断情况说明（或不存在）")
        unit_code = event["unit_code"] if event else _unit_of_incident(conn, number)
        _scope(user, unit_code, f"警情 {number} ")
        current = int(row["version"]) if row else 0
        guard = _stale(current, expected_version, f"警情 {number} 的情况说明审查")
        old = row["verdict"] if row else None
        if old == judged:
            raise SupervisionError(f"警情 {number} 的情况说明已是「{EXCUSE_NAMES[judged]}」，无需重复操作")
        report_id = event["report_id"] if event else row["report_id"]
        values = {"report_id": report_id, "verdict": judged, "reason": text, "by_user": user.username, "at": at}
        stale = StaleWriteError(f"警情 {number} 的情况说明审查已被他人更新，请刷新后重试")
        if guard == 0:
            try:
                with conn.begin_nested():
                    conn.execute(sa.insert(sup_excuse_reviews), {"incident_no": number, "version": 1, **values})
            except sa.exc.IntegrityError as exc:
                raise stale from exc
        else:
            result = conn.execute(
                sa.update(sup_excuse_reviews)
                .where(sup_excuse_reviews.c.incident_no == number, sup_excuse_reviews.c.version == guard)
                .values(version=sup_excuse_reviews.c.version + 1, **values)
            )
            if result.rowcount != 1:
                raise stale
        history_id = conn.execute(
            sa.insert(sup_excuse_history), {"incident_no": number, **values}
        ).inserted_primary_key[0]
        _audit(conn, user, page, f"excuse:{judged}", number, text, at)
        mode = rules_config.load().get("excuse_review", "auto")
        if _effective(mode, old) != _effective(mode, judged):
            _rescore(conn)
    return int(history_id)


def _unit_of_incident(conn: Connection, incident_no: str) -> str | None:
    row = conn.execute(
        sa.text("SELECT unit_code FROM event_coverage WHERE incident_no = :n"), {"n": incident_no}
    ).first()
    return None if row is None else row[0]
