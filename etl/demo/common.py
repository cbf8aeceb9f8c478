"""Shared constants and small helpers of the demo generator.

Times are handled as int64 seconds since the Unix epoch (naive local
wall-clock time of Asia/Shanghai) and only turned into text when written.
``NULL_T`` marks a missing time.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

NULL_T = np.iinfo(np.int64).min


def ts(text: str) -> int:
    """'YYYY-MM-DD HH:MM:SS' -> epoch seconds."""
    return int((datetime.strptime(text, "%Y-%m-%d %H:%M:%S") - datetime(1970, 1, 1)).total_seconds())


YEAR_START = ts("2025-12-01 00:00:00")
HORIZON = ts("2026-11-25 20:00:00")  # activities end before this
LAST_T = ts("2026-11-28 20:00:00")  # no source time later than this
EVAL_T = ts("2026-11-28 23:59:59")  # default evaluation date
DAY = 86400
HOUR = 3600
# ``etl demo --years N``: the data start N - 1 years before YEAR_START (the evaluation date stays), and the years
# before the last one have more lapses, fading out towards YEAR_START, so that a trend shows (issue 18)
MAX_YEARS = 5
LAPSE_LEAD = 1.5  # a year before YEAR_START: 2.5 times the lapses of the last year


def span_start(years: int) -> int:
    """Epoch seconds where a demo of ``years`` years starts (YEAR_START for one year)."""
    if not 1 <= int(years) <= MAX_YEARS:
        raise ValueError(years)
    return ts(f"{2025 - (int(years) - 1)}-12-01 00:00:00")


def lapse_factor(t: np.ndarray) -> np.ndarray:
    """How many times the last year's share of lapses (no or partial recording, late upload) applies at ``t``:
    1 from YEAR_START on (so a one-year demo is unchanged), LAPSE_LEAD more per year before it."""
    before = (YEAR_START - np.asarray(t, dtype=np.int64).astype(np.float64)) / (365 * DAY)  # no int64 overflow
    return 1.0 + LAPSE_LEAD * np.clip(before, 0.0, MAX_YEARS)


# rules.md parameters (defaults of config/rules.yaml)
GAP_TOL = 30
REPORT_DEADLINE = 24 * HOUR
EMERGENCY_BACKFILL = 24 * HOUR
PERF_CHECK_DAYS = 30
REPAIR_DAYS = 30
RETENTION_DAYS = 180
UPLOAD_DEADLINE = 24 * HOUR

# rules.md action -> (documents, AV)
ACTIONS: dict[str, tuple[tuple[str, ...], bool]] = {
    "inquiry": (("inquiry_record",), False),
    "evidence_collection": (("evidence_notice", "evidence_list"), False),
    "evidence_preservation": (("preservation_record",), False),
    "sampling": (("sampling_notice", "item_list"), True),
    "inspection": (("inspection_record",), True),
    "survey": (("survey_record",), True),
    "hearing": (("hearing_notice", "hearing_record"), True),
    "appraisal": (("appraisal_commission", "appraisal_opinion"), False),
    "seal": (("seal_seize_decision", "seal_seize_list"), True),
    "seize": (("seal_seize_decision", "seal_seize_list"), True),
    "freeze": (("freeze_decision",), False),
    "restrict_liberty": (("restriction_document",), True),
    "obstruction": ((), True),
    "mass_incident": ((), True),
    "refusal": (("refusal_record",), True),
    "rights_notification": (("rights_notice",), False),
    "statement_defence": (("statement_record",), False),
    "urge": (("urge_notice",), False),
    "compulsory_execution": (("enforcement_decision",), False),
    "remove_obstruction": (("enforcement_decision",), True),
    "restore": (("enforcement_decision",), True),
    "court_application": (("court_application",), False),
    "performance_check": (("performance_check_record",), False),
}
SIGNATURE_REQUIRED = frozenset(
    {
        "inquiry_record",
        "inspection_record",
        "survey_record",
        "hearing_record",
        "evidence_list",
        "item_list",
        "seal_seize_list",
        "rights_notice",
        "statement_record",
        "refusal_record",
    }
)
SERVED = frozenset(
    {
        "penalty_decision",
        "on_spot_decision",
        "seal_seize_decision",
        "urge_notice",
        "enforcement_decision",
        "not_filed_notice",
    }
)
DELIVERY_NEEDS = {
    "direct": ("receipt_signed",),
    "entrusted": ("receipt_signed", "reason", "entrustee"),
    "mail": ("postal_receipt",),
    "left": ("note",),
    "public_notice": ("reason", "note"),
}


def iso_text(values: np.ndarray) -> np.ndarray:
    """int64 epoch seconds -> fixed-width unicode array 'YYYY-MM-DD HH:MM:SS' (fast: no Python loop)."""
    text = np.datetime_as_string(np.asarray(values, dtype=np.int64).astype("datetime64[s]"), unit="s")
    text = np.ascontiguousarray(text, dtype="<U19")
    text.view(np.uint32).reshape(-1, 19)[:, 10] = ord(" ")
    return text


def fmt_times(values: np.ndarray) -> np.ndarray:
    """int64 epoch seconds -> object array of 'YYYY-MM-DD HH:MM:SS' (None for NULL_T)."""
    values = np.asarray(values, dtype=np.int64)
    null = values == NULL_T
    text = iso_text(np.where(null, 0, values)).astype(object)
    text[null] = None
    return text


def compact_stamps(values: np.ndarray) -> np.ndarray:
    """int64 epoch seconds -> 'YYYYMMDDHHMMSS' strings (vendor file names)."""
    chars = iso_text(values).view(np.uint32).reshape(-1, 19)[:, [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]]
    return np.ascontiguousarray(chars).view("<U14").ravel()


def month_of(values: np.ndarray) -> np.ndarray:
    """int64 epoch seconds -> 'YYYY-MM' strings."""
    return np.datetime_as_string(np.asarray(values, dtype=np.int64).astype("datetime64[s]"), unit="M").astype(object)


def seq_codes(prefix: str | np.ndarray, numbers: np.ndarray, width: int) -> np.ndarray:
    """prefix + zero-padded number, vectorised."""
    nums = pd.Series(np.asarray(numbers)).astype(str).str.zfill(width)
    return (pd.Series(prefix, index=nums.index).astype(str) + nums).to_numpy(dtype=object)


def group_rank(groups: np.ndarray) -> np.ndarray:
    """0-based position of each row within its run of equal ``groups`` (rows already grouped)."""
    groups = np.asarray(groups)
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[True, groups[1:] != groups[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    return np.arange(n) - first
