"""Command line: ``python -m etl demo|run|assess`` (shared/spec/interface.md).

Errors the user can act on (``EtlError``) become one line on stderr and a
non-zero exit; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from etl.errors import EtlError
from etl.times import TS_FORMAT


def _as_of(value: str) -> datetime:
    for fmt in (TS_FORMAT, "%Y-%m-%d"):
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return parsed.replace(hour=23, minute=59, second=59) if fmt == "%Y-%m-%d" else parsed
    raise argparse.ArgumentTypeError(f"评估时间格式应为 YYYY-MM-DD HH:MM:SS：{value}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m etl", description="行政执法全过程记录督察考评平台 ETL")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="生成演示数据（全部源系统）")
    d.add_argument("--out", required=True, type=Path)
    d.add_argument("--scale", choices=["small", "city"], default="small")
    d.add_argument("--seed", type=int, default=2026)
    d.add_argument("--no-media", action="store_true", help="不生成媒体文件（city 规模可用）")

    r = sub.add_parser("run", help="加载数据源、检查完整性、评估规则、计算得分")
    r.add_argument("--sources", required=True, type=Path)
    r.add_argument(
        "--warehouse", default=None, help="SQLAlchemy URL；默认 $WAREHOUSE_URL 或 sqlite:///data/warehouse.sqlite"
    )
    r.add_argument("--as-of", type=_as_of, default=None, help='评估时间 "YYYY-MM-DD HH:MM:SS"')
    r.add_argument("--no-rules", action="store_true", help="只加载，不评估规则（基准测试用）")

    a = sub.add_parser("assess", help="导出考评表（Excel）")
    a.add_argument("--warehouse", default=None)
    a.add_argument("--period", required=True, help="2026、2026-Q3 或 2026-07")
    a.add_argument("--unit", default=None, help="单位代码（默认全市）")
    a.add_argument("--scheme", default=None, type=Path, help="考评方案文件（默认当前方案）")
    a.add_argument("--xlsx", required=True, type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from etl.demo import generate

            summary = generate(args.out, scale=args.scale, seed=args.seed, media=not args.no_media)
            print(summary)
        elif args.command == "run":
            from etl.pipeline import run

            result = run(args.sources, warehouse=args.warehouse, as_of=args.as_of, rules=not args.no_rules)
            print(result.summary())
        elif args.command == "assess":
            from etl.reports.workbook import assess_cli

            out = assess_cli(
                warehouse=args.warehouse, period=args.period, unit=args.unit, scheme=args.scheme, xlsx=args.xlsx
            )
            print(out)
    except EtlError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("已中断，数据仓库未改变。", file=sys.stderr)
        return 130
    return 0
