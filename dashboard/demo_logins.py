"""Print the demo logins of a demo directory: ``python -m dashboard.demo_logins data/demo``."""

from __future__ import annotations

import sys
from pathlib import Path

import bcrypt

from dashboard.auth import ROLES, load_users
from etl.errors import EtlError

DEMO_PASSWORD = "Demo#2026"  # documented in the README; valid only for the demo data


def lines(demo_dir: Path) -> list[str]:
    users = load_users(Path(demo_dir) / "users.yaml")
    first = next(iter(users.values()))
    if not bcrypt.checkpw(DEMO_PASSWORD.encode(), first["password_hash"].encode()):
        return [f"{demo_dir}/users.yaml 中的账号不使用演示密码，请向管理员索取。"]
    out = [f"演示账号（密码均为 {DEMO_PASSWORD}，仅用于演示数据）："]
    for name, u in users.items():
        unit = f"，单位 {u['unit_code']}" if u["role"] == "unit_admin" else ""
        unit = f"，警号 {u['police_no']}" if u["role"] == "officer" else unit  # sees only its own record
        out.append(f"  {name:<10} {ROLES[u['role']]}（{u['name']}{unit}）")
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    demo_dir = Path(args[0] if args else "data/demo")
    try:
        print("\n".join(lines(demo_dir)))
    except EtlError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
