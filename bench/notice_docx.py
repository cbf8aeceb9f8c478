"""Benchmark of the printable rectification notice (整改通知书, prints figures, asserts nothing).

    .venv/bin/python bench/notice_docx.py [--findings 200] [--repeat 5]

Builds the .docx of one notice naming ``--findings`` findings (a city-scale notice to a unit with many open
findings) with ``etl.reports.notice_docx.build_notice`` and prints the best and median time of ``--repeat``
builds and the size of the document.  Goal: ≤ 2 s per notice.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from etl.reports.notice_docx import build_notice  # noqa: E402


def sample(n: int) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    units = pd.DataFrame({"unit_code": ["140403510000"], "name": ["长治市公安局潞州分局东街派出所"]})
    rules = [("AV-NONE", "第五条、第十五条"), ("AV-GAP", "第十五条、第十七条"), ("DOC-MISSING", "第十三条")]
    findings = pd.DataFrame(
        {
            "finding_key": [f"{rules[i % 3][0]}:J1404032026100{i:07d}" for i in range(n)],
            "rule_id": [rules[i % 3][0] for i in range(n)],
            "article": [rules[i % 3][1] for i in range(n)],
            "occurred_at": [f"2026-10-{1 + i % 28:02d} {8 + i % 12:02d}:{i % 60:02d}:00" for i in range(n)],
            "month": ["2026-10"] * n,
            "detail": [
                f"现场执法事件 J1404032026100{i:07d} 的执法过程未形成完整音像记录，覆盖率 {i % 100}%" for i in range(n)
            ],
        }
    )
    notice = {
        "notice_id": 1,
        "unit_code": "140403510000",
        "issued_by": "legal",
        "issued_at": "2026-11-20 09:30:00",
        "deadline": "2026-12-05",
        "text": "请逐条核查问题原因，落实整改责任人，完善现场执法音像记录制度。",
        "basis": "period",
        "basis_ref": "2026-10",
        "period": "2026-10",
        "accountability": json.dumps({"officers": ["100001", "100002"], "paragraph": "2"}),
        "state": "open",
    }
    return notice, findings, units


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--findings", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    notice, findings, units = sample(args.findings)
    times, size = [], 0
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        size = len(build_notice(notice, findings, units))
        times.append(time.perf_counter() - t0)
    print(
        f"整改通知书 .docx，{args.findings} 条问题：最快 {min(times):.3f} s，中位 {statistics.median(times):.3f} s"
        f"（{args.repeat} 次），{size / 1024:.0f} KiB；目标 ≤ 2 s"
    )


if __name__ == "__main__":
    main()
