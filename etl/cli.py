"""Command line: ``python -m etl demo|run|assess`` (shared/spec/interface.md) and the supervision writes
(``review``, ``excuse``, ``appeal``, ``publish``, ``spotcheck draw|record``, ``rectify notice|respond|close|print``,
``supervision export|import``; shared/spec/supervision.md).

The supervision commands are thin over ``etl.supervision``: the same functions the pages call, with the
role and scope of the dashboard user named by ``--by`` (``etl.users``); each prints the id it created.

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


# What the CLI prints for a verdict argument (the arguments stay the spec's English words).
_VERDICT_ZH = {
    "confirm": "确认",
    "exempt": "豁免",
    "reopen": "重新打开",
    "accept": "采信",
    "reject": "不采信",
}
_APPEAL_ZH = {"uphold": "申诉成立", "reject": "申诉不成立"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m etl", description="行政执法全过程记录督察考评平台 ETL")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="生成演示数据（全部源系统）")
    d.add_argument("--out", required=True, type=Path)
    d.add_argument(
        "--scale", choices=["small", "city", "province"], default="small", help="province：多个市的数据汇入一个省厅"
    )
    d.add_argument("--cities", type=int, default=10, help="province 规模的城市数（1 至 11，默认 10）")
    # province: the scale of each city (hidden: tests and `bench/scale.py --base small` use small cities)
    d.add_argument("--base", choices=["small", "city"], default="city", help=argparse.SUPPRESS)
    d.add_argument("--seed", type=int, default=2026)
    d.add_argument("--years", type=int, default=1, help="数据年数（至评估日，默认 1；2 年可见同比趋势）")
    d.add_argument("--no-media", action="store_true", help="不生成媒体文件（city 规模可用）")

    r = sub.add_parser("run", help="加载数据源、检查完整性、评估规则、计算得分")
    r.add_argument("--sources", required=True, type=Path)
    r.add_argument(
        "--warehouse", default=None, help="SQLAlchemy URL；默认 $WAREHOUSE_URL 或 sqlite:///data/warehouse.sqlite"
    )
    r.add_argument("--as-of", type=_as_of, default=None, help='评估时间 "YYYY-MM-DD HH:MM:SS"')
    r.add_argument("--no-rules", action="store_true", help="只加载，不评估规则（基准测试用）")
    r.add_argument(
        "--accept-shrink",
        action="append",
        metavar="TABLE",
        help="接受该全量对比表本次行数大幅减少（超过 shrink_guard），可重复",
    )

    a = sub.add_parser("assess", help="导出考评表（Excel）")
    a.add_argument("--warehouse", default=None)
    a.add_argument("--period", required=True, help="2026、2026-Q3 或 2026-07")
    a.add_argument("--unit", default=None, help="单位代码（默认全市）")
    a.add_argument("--scheme", default=None, type=Path, help="考评方案文件（默认当前方案）")
    a.add_argument("--xlsx", required=True, type=Path)
    a.add_argument("--current", action="store_true", help="已发布期间也导出当前数据（草稿），而非已发布版本")
    _supervision_parsers(sub)
    return p


def _writer(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options every supervision write takes: who (a dashboard user name), why, which warehouse."""
    parser.add_argument("--by", required=True, help="操作用户（仪表盘用户名，按其角色与管辖范围检查）")
    parser.add_argument("--reason", required=True, help="理由（必填，记入审计日志）")
    parser.add_argument("--warehouse", default=None, help="SQLAlchemy URL；默认 $WAREHOUSE_URL")
    return parser


def _supervision_parsers(sub: argparse._SubParsersAction) -> None:
    v = _writer(sub.add_parser("review", help="复核问题：确认、豁免或重新打开"))
    v.add_argument("--finding", required=True, help="问题编号（finding_key）")
    v.add_argument("--verdict", required=True, choices=["confirm", "exempt", "reopen"])
    v.add_argument("--category", default=None, help="豁免理由类别：不可抗力、数据错误、已书面说明、其他")

    e = _writer(sub.add_parser("excuse", help="审查中断情况说明（第十七条）：采纳或不予采纳"))
    e.add_argument("--incident", required=True, help="警情编号")
    e.add_argument("--verdict", required=True, choices=["accept", "reject"])

    ap = _writer(sub.add_parser("appeal", help="提出申诉（单位管理员）或处理申诉（法制部门）"))
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--finding", help="对该问题提出申诉")
    which.add_argument("--decide", type=int, metavar="ID", help="处理编号为 ID 的申诉")
    ap.add_argument("--verdict", choices=["uphold", "reject"], help="处理结论（与 --decide 一起使用）")
    ap.add_argument("--category", default=None, help="申诉成立时的理由类别（默认 其他）")

    pb = _writer(sub.add_parser("publish", help="发布考评期间的得分（第 n+1 版，冻结；法制部门）"))
    pb.add_argument("--period", required=True, help="2026、2026-Q3 或 2026-07；多个期间用逗号分隔（一并发布）")
    pb.add_argument("--scheme", default=None, type=Path, help="考评方案文件（默认当前方案）")

    _spotcheck_parsers(sub)
    _rectify_parsers(sub)

    s = sub.add_parser("supervision", help="督察记录：导出或导入（JSON lines）")
    ssub = s.add_subparsers(dest="supervision_command", required=True)
    ex = _writer(ssub.add_parser("export", help="导出全部督察记录"))
    ex.add_argument("--out", required=True, type=Path)
    im = _writer(ssub.add_parser("import", help="导入督察记录（按编号重新关联；不覆盖不同的已有记录）"))
    im.add_argument("file", type=Path)


def _spotcheck_parsers(sub: argparse._SubParsersAction) -> None:
    sc = sub.add_parser("spotcheck", help="随机抽查：抽取样本、记录审查结果（法制部门）")
    ssub = sc.add_subparsers(dest="spotcheck_command", required=True)
    dr = _writer(ssub.add_parser("draw", help="抽取一次抽查（按单位随机抽取，可复现）"))
    dr.add_argument("--period", required=True, help="2026、2026-Q3 或 2026-07")
    dr.add_argument("--kind", required=True, choices=["events", "cases"], help="events：现场执法；cases：案件")
    dr.add_argument("--per-unit", required=True, type=int, help="每单位抽取数量")
    dr.add_argument("--seed", required=True, type=int, help="随机种子（相同种子和数据得到相同样本）")
    dr.add_argument("--unit", default=None, help="抽查范围：该单位及下级单位（默认当前用户的全部管辖范围）")
    dr.add_argument("--reviewers", default=None, help="抽查人员（法制部门用户名，逗号分隔，依次分配）")
    rc = _writer(ssub.add_parser("record", help="记录一个抽查对象的审查结果（未列出的检查项为合格）"))
    rc.add_argument("--campaign", required=True, type=int, help="抽查编号")
    rc.add_argument("--object", required=True, help="警情编号或案件编号")
    rc.add_argument("--fail", default="", help='不合格的检查项，逗号分隔，如 "16.2,16.6"')
    rc.add_argument("--na", default="", help="不适用的检查项，逗号分隔")
    rc.add_argument("--note", default=None, help="审查备注")


def _rectify_parsers(sub: argparse._SubParsersAction) -> None:
    rf = sub.add_parser("rectify", help="整改通知：下发、答复、复查、打印")
    rsub = rf.add_subparsers(dest="rectify_command", required=True)
    no = _writer(rsub.add_parser("notice", help="下发整改通知（法制部门）"))
    no.add_argument("--unit", required=True, help="整改单位代码")
    basis = no.add_mutually_exclusive_group(required=True)
    basis.add_argument("--findings", help="问题编号（finding_key），逗号分隔")
    basis.add_argument("--period", help="该期间该单位及下级单位的全部未豁免问题")
    basis.add_argument("--campaign", type=int, help="该次抽查中该单位及下级单位的不合格问题")
    no.add_argument("--rules", default=None, help="与 --period 一起使用：只列入这些规则的问题，逗号分隔")
    no.add_argument("--deadline", default=None, help="整改期限 YYYY-MM-DD（默认下发日期 + rectify_days 天）")
    no.add_argument("--text", default=None, help="整改要求（默认与 --reason 相同）")
    no.add_argument("--officers", default=None, help="追责建议：被建议追责人员的警号，逗号分隔")
    no.add_argument("--paragraph", default=None, help="追责建议：适用第三十五条第几项（1-6 或文字）")
    rs = _writer(rsub.add_parser("respond", help="答复整改通知（单位管理员）"))
    rs.add_argument("--notice", required=True, type=int, help="整改通知编号")
    rs.add_argument("--text", default=None, help="整改措施（默认与 --reason 相同）")
    cl = _writer(rsub.add_parser("close", help="复查整改答复：验收通过或退回（法制部门）"))
    cl.add_argument("--notice", required=True, type=int, help="整改通知编号")
    cl.add_argument("--verdict", required=True, choices=["accept", "return"])
    cl.add_argument("--note", default=None, help="复查意见（默认与 --reason 相同）")
    cl.add_argument("--deadline", default=None, help="退回时新的整改期限 YYYY-MM-DD")
    pr = _writer(rsub.add_parser("print", help="生成可打印的整改通知书（.docx）"))
    pr.add_argument("--notice", required=True, type=int, help="整改通知编号")
    pr.add_argument("--docx", required=True, type=Path, help="输出文件（.docx）")


SUPERVISION_COMMANDS = ("review", "excuse", "appeal", "publish", "supervision", "spotcheck", "rectify")
_KIND_ZH = {"events": "现场执法", "cases": "案件"}
_CLOSE_ZH = {"accept": "验收通过", "return": "退回"}


def _acting_user(args: argparse.Namespace):  # noqa: ANN202 - (engine, etl.users.User)
    """The warehouse engine and the user ``--by`` names (its role and scope from the users file)."""
    from etl.errors import ConfigError
    from etl.users import resolve
    from etl.warehouse.db import is_new_sqlite, make_engine, warehouse_url

    url = warehouse_url(args.warehouse)
    if is_new_sqlite(url):
        raise ConfigError(f"数据仓库不存在，请先运行 etl run：{url}")
    engine = make_engine(url)
    try:
        return engine, resolve(args.by, engine)
    except BaseException:
        engine.dispose()
        raise


def _supervision(args: argparse.Namespace) -> str:
    """Run one supervision command; the line to print (with the id it created)."""
    from etl.errors import SupervisionError
    from etl.supervision import actions, portable

    if args.command == "appeal" and args.decide is None and args.verdict is not None:
        raise SupervisionError("--verdict 只能与 --decide 一起使用（提出申诉不需要结论）")
    if args.command == "appeal" and args.decide is not None and args.verdict is None:
        raise SupervisionError("处理申诉须给出 --verdict uphold 或 reject")
    engine, user = _acting_user(args)
    try:
        if args.command == "publish":
            from etl.supervision.publish import publish_many

            wanted = [p.strip() for p in args.period.split(",")]
            done = publish_many(engine, user, wanted, reason=args.reason, scheme_path=args.scheme)
            return "\n".join(f"已发布 {p} 第 {v} 版：发布编号 {i}" for p, (i, v) in zip(wanted, done, strict=True))
        if args.command == "review":
            rid = actions.review(engine, user, args.finding, args.verdict, reason=args.reason, category=args.category)
            return f"已记录复核：复核编号 {rid}（{args.finding}：{_VERDICT_ZH.get(args.verdict, args.verdict)}）"
        if args.command == "excuse":
            hid = actions.judge_excuse(engine, user, args.incident, args.verdict, reason=args.reason)
            return f"已记录情况说明审查：审查编号 {hid}（警情 {args.incident}：{_VERDICT_ZH.get(args.verdict, args.verdict)}）"
        if args.command == "appeal" and args.decide is None:
            aid = actions.file_appeal(engine, user, args.finding, reason=args.reason)
            return f"已提出申诉：申诉编号 {aid}（{args.finding}）"
        if args.command == "appeal":
            rid = actions.decide_appeal(
                engine, user, args.decide, args.verdict, reason=args.reason, category=args.category
            )
            return f"已处理申诉 {args.decide}：复核编号 {rid}（{_APPEAL_ZH.get(args.verdict, args.verdict)}）"
        if args.command == "spotcheck":
            return _spotcheck(engine, user, args)
        if args.command == "rectify":
            return _rectify(engine, user, args)
        if args.supervision_command == "export":
            counts = portable.export(engine, user, args.out, reason=args.reason)
            return f"已导出督察记录 {sum(counts.values())} 行：{args.out}"
        result = portable.import_file(engine, user, args.file, reason=args.reason)
        imported = sum(r["imported"] for r in result.values())
        identical = sum(r["identical"] for r in result.values())
        orphans = portable.orphaned_keys(engine)
        line = f"已导入督察记录 {imported} 行（已存在且相同 {identical} 行）"
        return line + (f"；{len(orphans)} 条判定在本数据仓库中找不到对应问题（保留为孤立记录）" if orphans else "")
    finally:
        engine.dispose()


def _spotcheck(engine, user, args: argparse.Namespace) -> str:  # noqa: ANN001 - (Engine, etl.users.User)
    from etl.supervision import spotcheck

    if args.spotcheck_command == "draw":
        res = spotcheck.draw(
            engine,
            user,
            period=args.period,
            kind=args.kind,
            per_unit=args.per_unit,
            seed=args.seed,
            unit_code=args.unit,
            reviewers=args.reviewers,
            reason=args.reason,
        )
        line = (
            f"已抽取：抽查编号 {res['campaign_id']}（{args.period} {_KIND_ZH[args.kind]}，"
            f"抽取 {res['drawn']} 个对象，可抽 {res['population']} 个）"
        )
        return line + (f"\n说明：{res['note']}" if res["note"] else "")
    points = {p.strip(): ("n/a", None) for p in (args.na or "").split(",") if p.strip()}
    res = spotcheck.record(
        engine,
        user,
        args.campaign,
        args.object,
        points=points or None,
        fail=args.fail or (),
        note=args.note,
        reason=args.reason,
    )
    if res["verdict"] == "fail":
        what = f"不合格（{'、'.join(res['failed_points'])}），问题 {res['finding_key']}"
    else:
        what = "合格"
    return f"已记录抽查结果：记录编号 {res['history_id']}（抽查 {args.campaign}，{args.object}：{what}）"


def _rectify(engine, user, args: argparse.Namespace) -> str:  # noqa: ANN001 - (Engine, etl.users.User)
    from etl.supervision import rectify

    if args.rectify_command == "notice":
        if args.rules and not args.period:
            from etl.errors import SupervisionError

            raise SupervisionError("--rules 只能与 --period 一起使用")
        account = {"officers": args.officers or [], "paragraph": args.paragraph or ""}
        res = rectify.issue(
            engine,
            user,
            args.unit,
            finding_keys=args.findings,
            period=args.period,
            rules=args.rules,
            campaign_id=args.campaign,
            deadline=args.deadline,
            text=args.text or args.reason,
            accountability=account if (args.officers or args.paragraph) else None,
            reason=args.reason,
        )
        return (
            f"已下发整改通知：通知编号 {res['notice_id']}（单位 {args.unit}，问题 {res['findings']} 个，"
            f"整改期限 {res['deadline']:%Y-%m-%d}）"
        )
    if args.rectify_command == "respond":
        eid = rectify.respond(engine, user, args.notice, text=args.text or args.reason, reason=args.reason)
        return f"已答复整改通知 {args.notice}：记录编号 {eid}"
    if args.rectify_command == "close":
        eid = rectify.close(
            engine,
            user,
            args.notice,
            verdict=args.verdict,
            note=args.note or args.reason,
            new_deadline=args.deadline,
            reason=args.reason,
        )
        return f"已复查整改通知 {args.notice}：记录编号 {eid}（{_CLOSE_ZH[args.verdict]}）"
    path = rectify.print_notice(engine, user, args.notice, args.docx, reason=args.reason)
    return f"已生成整改通知书：{path}（通知编号 {args.notice}）"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from etl.demo import generate

            summary = generate(
                args.out,
                scale=args.scale,
                seed=args.seed,
                media=not args.no_media,
                years=args.years,
                cities=args.cities,
                base=args.base,
            )
            print(summary)
        elif args.command == "run":
            from etl.pipeline import run

            result = run(
                args.sources,
                warehouse=args.warehouse,
                as_of=args.as_of,
                rules=not args.no_rules,
                accept_shrink=args.accept_shrink or (),
            )
            print(result.summary())
        elif args.command == "assess":
            from etl.reports.workbook import assess_cli

            out = assess_cli(
                warehouse=args.warehouse,
                period=args.period,
                unit=args.unit,
                scheme=args.scheme,
                xlsx=args.xlsx,
                current=args.current,
            )
            print(out)
        elif args.command in SUPERVISION_COMMANDS:
            print(_supervision(args))
    except EtlError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("已中断，数据仓库未改变。", file=sys.stderr)
        return 130
    return 0
