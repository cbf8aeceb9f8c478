"""The supervision writes of the pages: thin calls of ``etl.supervision`` with the page's id.

The same functions the CLI calls (``etl.supervision.actions``, ``publish``, ``spotcheck``, ``rectify``): each checks
the reason, the role, the key, the scope and the version the page showed, writes in one transaction, appends
the audit row and rescores; a refusal raises ``etl.errors.SupervisionError`` with a Chinese message and
writes nothing.  After a write every cached query result is dropped (findings, states, scores changed).
"""

from __future__ import annotations

from datetime import date

from dashboard import queries
from dashboard.auth import UserContext
from etl.supervision import actions
from etl.supervision import publish as publication


def _engine(url: str):  # noqa: ANN202
    return queries.engine(url)


def _done(result):  # noqa: ANN001, ANN202
    queries.clear_caches()
    return result


def review(
    url: str,
    user: UserContext,
    finding_keys: list[str],
    verdict: str,
    *,
    reason: str,
    category: str | None,
    versions: dict[str, int],
    page: str = "review",
) -> list[int]:
    """One verdict (confirm | exempt | reopen) on one or many findings, all or nothing; the review ids."""
    return _done(
        actions.review_many(
            _engine(url),
            user,
            list(finding_keys),
            verdict,
            reason=reason,
            category=category,
            expected_versions={k: int(versions[k]) for k in finding_keys if k in versions},
            page=page,
        )
    )


def file_appeal(url: str, user: UserContext, finding_key: str, *, reason: str, page: str = "appeals") -> int:
    """A unit administrator's appeal against an open finding of its scope; the appeal id."""
    return _done(actions.file_appeal(_engine(url), user, finding_key, reason=reason, page=page))


def decide_appeal(
    url: str, user: UserContext, appeal_id: int, verdict: str, *, reason: str, version: int, page: str = "appeals"
) -> int:
    """The legal department's decision (upheld | rejected) on a pending appeal; the appeal id."""
    return _done(
        actions.decide_appeal(
            _engine(url), user, int(appeal_id), verdict, reason=reason, expected_version=int(version), page=page
        )
    )


def judge_excuse(
    url: str, user: UserContext, incident_no: str, verdict: str, *, reason: str, version: int, page: str = "excuses"
) -> int:
    """Accept or reject the Art. 17 interruption report of an excused event; the judgement's id."""
    return _done(
        actions.judge_excuse(
            _engine(url), user, incident_no, verdict, reason=reason, expected_version=int(version), page=page
        )
    )


def publish(url: str, user: UserContext, period: str, *, reason: str, page: str = "publication") -> tuple[int, int]:
    """Publish the period's current figures as its next version; (publication id, version)."""
    return _done(publication.publish(_engine(url), user, period, reason=reason, page=page))


# --- spot-checks (随机抽查) and rectification (整改): etl.supervision.spotcheck / rectify -----------------
# Imported where called: the page module loads even while a backend module is being replaced.


def draw_campaign(
    url: str,
    user: UserContext,
    *,
    period: str,
    kind: str,
    per_unit: int,
    seed: int,
    unit_code: str | None,
    reason: str,
    page: str = "spotcheck",
) -> dict:
    """Draw a spot-check campaign (legal department): {campaign_id, drawn, population, short_units, note}."""
    from etl.supervision import spotcheck

    return _done(
        spotcheck.draw(
            _engine(url),
            user,
            period=period,
            kind=kind,
            per_unit=int(per_unit),
            seed=int(seed),
            unit_code=unit_code or None,
            reason=reason,
            page=page,
        )
    )


def record_review(
    url: str,
    user: UserContext,
    campaign_id: int,
    object_key: str,
    *,
    points: dict[str, tuple[str, str | None]],
    note: str | None,
    reason: str,
    version: int | None,
    page: str = "spotcheck",
) -> dict:
    """Record the checklist of one sampled object: {verdict, failed_points, finding_key, version}."""
    from etl.supervision import spotcheck

    return _done(
        spotcheck.record(
            _engine(url),
            user,
            int(campaign_id),
            object_key,
            points=points,
            note=note or None,
            reason=reason,
            expected_version=None if version is None else int(version),
            page=page,
        )
    )


def close_campaign(url: str, user: UserContext, campaign_id: int, *, reason: str, page: str = "spotcheck") -> int:
    """Close a campaign (no more reviews); its id."""
    from etl.supervision import spotcheck

    spotcheck.close_campaign(_engine(url), user, int(campaign_id), reason=reason, page=page)
    return _done(int(campaign_id))


def issue_notice(
    url: str,
    user: UserContext,
    unit_code: str,
    *,
    finding_keys: list[str] | None = None,
    period: str | None = None,
    rules: list[str] | None = None,
    campaign_id: int | None = None,
    deadline: date | None,
    text: str,
    accountability: dict | None,
    reason: str,
    page: str = "rectification",
) -> dict:
    """Issue a rectification notice to a unit (legal department): {notice_id, findings, deadline}."""
    from etl.supervision import rectify

    return _done(
        rectify.issue(
            _engine(url),
            user,
            unit_code,
            finding_keys=list(finding_keys) if finding_keys else None,
            period=period,
            rules=list(rules) if rules else None,
            campaign_id=None if campaign_id is None else int(campaign_id),
            deadline=deadline,
            text=text,
            accountability=accountability or None,
            reason=reason,
            page=page,
        )
    )


def respond_notice(
    url: str, user: UserContext, notice_id: int, *, text: str, version: int | None, page: str = "rectification"
) -> int:
    """The unit administrator's answer (measures taken) to a notice; the notice id."""
    from etl.supervision import rectify

    rectify.respond(
        _engine(url),
        user,
        int(notice_id),
        text=text,
        expected_version=None if version is None else int(version),
        page=page,
    )
    return _done(int(notice_id))


def close_notice(
    url: str,
    user: UserContext,
    notice_id: int,
    verdict: str,
    *,
    note: str,
    new_deadline: date | None = None,
    version: int | None,
    page: str = "rectification",
) -> int:
    """The legal department's re-check: accept (closed) or return (with a note, optionally a new deadline)."""
    from etl.supervision import rectify

    rectify.close(
        _engine(url),
        user,
        int(notice_id),
        verdict=verdict,
        note=note,
        new_deadline=new_deadline,
        expected_version=None if version is None else int(version),
        page=page,
    )
    return _done(int(notice_id))
