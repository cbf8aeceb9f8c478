"""``python -m dashboard``: the dashboard's administration (docs/SECURITY.md).

    python -m dashboard audit verify [--warehouse URL]
    python -m dashboard users list|add|disable|enable|reset-password [--file USERS.yaml] ...

The users file is ``--file``, else ``$DASHBOARD_USERS_FILE``.  It holds bcrypt hashes only; passwords are read
from the terminal (or one line of standard input with ``--password-stdin``) and must be strong
(``etl.users.password_problem``).  Disabling a user is written to the file: the dashboard re-reads it on every
interaction, so that user's sessions end at their next click.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from etl import users as users_mod
from etl.errors import EtlError
from etl.vocabulary import ROLES


def _users_path(args: argparse.Namespace) -> Path:
    path = args.file or os.environ.get("DASHBOARD_USERS_FILE")
    if not path:
        raise EtlError("请用 --file 指定用户文件，或设置 DASHBOARD_USERS_FILE")
    return Path(path)


def _password(args: argparse.Namespace, username: str) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"{username} 的新密码：")
        if getpass.getpass("再输入一次：") != password:
            raise EtlError("两次输入的密码不一致")
    problem = users_mod.password_problem(password, username)
    if problem:
        raise EtlError(f"密码强度不足：{problem}")
    return password


def _audit_verify(args: argparse.Namespace) -> int:
    from etl.warehouse import audit
    from etl.warehouse.db import make_engine, warehouse_url

    engine = make_engine(warehouse_url(args.warehouse))
    try:
        state = audit.verify(engine)
    finally:
        engine.dispose()
    print(state.message())
    return 0 if state.ok else 2


def _users(args: argparse.Namespace) -> int:
    path = _users_path(args)
    data = users_mod.read_users_file(path)
    if users_mod.demo_info(path) is not None and args.action != "list":
        raise EtlError(f"{path} 是演示账号文件，不能在其中管理正式用户")
    table: dict = data["users"]
    name = (args.username or "").strip().lower() if args.action != "list" else ""
    if args.action == "list":
        for username, u in sorted(table.items()):
            state = "已停用" if u.get("disabled") else "启用"
            unit = f" 单位 {u.get('unit_code')}" if u.get("unit_code") else ""
            print(f"{username:<16} {ROLES.get(u.get('role'), u.get('role'))}（{u.get('name', '')}{unit}） {state}")
        return 0
    if not name:
        raise EtlError("请给出用户名")
    if args.action == "add":
        if name in table:
            raise EtlError(f"用户 {name} 已存在")
        if args.role not in ROLES:
            raise EtlError(f"角色应为 {'、'.join(ROLES)} 之一")
        if args.role == "unit_admin" and not args.unit:
            raise EtlError("单位管理员须用 --unit 指定单位代码")
        if args.role == "officer" and not (args.police_no or "").strip():
            raise EtlError("民警用户须用 --police-no 指定本人警号")
        table[name] = {
            "name": args.name or name,
            "role": args.role,
            "unit_code": args.unit,
            "password_hash": users_mod.hash_password(_password(args, name)),
        }
        if args.police_no:
            table[name]["police_no"] = args.police_no.strip()
    else:
        if name not in table:
            raise EtlError(f"用户文件中没有用户：{name}")
        if args.action == "disable":
            table[name]["disabled"] = True
        elif args.action == "enable":
            table[name].pop("disabled", None)
        elif args.action == "reset-password":
            table[name]["password_hash"] = users_mod.hash_password(_password(args, name))
    users_mod.write_users_file(path, data)
    print(
        f"已{ {'add': '添加', 'disable': '停用', 'enable': '启用', 'reset-password': '重设密码'}[args.action] }：{name}"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dashboard", description="督察考评平台仪表盘管理")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("audit", help="系统日志")
    a.add_argument("action", choices=["verify"])
    a.add_argument("--warehouse", help="数仓 URL（默认 $WAREHOUSE_URL）")
    u = sub.add_parser("users", help="正式用户")
    u.add_argument("action", choices=["list", "add", "disable", "enable", "reset-password"])
    u.add_argument("username", nargs="?")
    u.add_argument("--file", help="用户文件（默认 $DASHBOARD_USERS_FILE）")
    u.add_argument("--role", choices=list(ROLES))
    u.add_argument("--unit", help="单位代码（单位管理员必填）")
    u.add_argument("--police-no", help="本人警号（民警必填：只能查看本人的执法记录档案）")
    u.add_argument("--name", help="姓名")
    u.add_argument("--password-stdin", action="store_true", help="从标准输入读一行密码")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _audit_verify(args) if args.command == "audit" else _users(args)
    except EtlError as exc:
        print(str(exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
