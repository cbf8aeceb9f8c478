"""The supervision writes of the pages: thin calls of ``etl.supervision`` with the page's id.

The same functions the CLI calls (``etl.supervision.actions``, ``etl.supervision.publish``): each checks
the reason, the role, the key, the scope and the version the page showed, writes in one transaction, appends
the audit row and rescores; a refusal raises ``etl.errors.SupervisionError`` with a Chinese message and
writes nothing.  After a write every cached query result is dropped (findings, states, scores changed).
"""

from __future__ import annotations

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
