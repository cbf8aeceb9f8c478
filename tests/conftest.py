"""Shared fixtures: real databases on this machine, one fresh database per test run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
# the demo warehouses of the supervision tests
pytest_plugins = ["tests.supervision_fixtures", "tests.spotcheck_fixtures"]
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB_ADMIN_URL = os.environ.get("TEST_MARIADB_ADMIN_URL", "mysql+pymysql://root@127.0.0.1:3306/")


def _new_database(admin_url: str, prefix: str) -> tuple[sa.Engine, str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    return admin, name, url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a PostgreSQL database created for this test and dropped after it."""
    try:
        admin, name, url = _new_database(PG_ADMIN_URL, "avtest")
    except sa.exc.OperationalError as exc:  # pragma: no cover - the machine always has it
        pytest.fail(f"local PostgreSQL not reachable: {exc}")
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """URL of a MariaDB database created for this test and dropped after it."""
    try:
        admin, name, url = _new_database(MARIADB_ADMIN_URL, "avtest")
    except sa.exc.OperationalError as exc:  # pragma: no cover
        pytest.fail(f"local MariaDB not reachable: {exc}")
    try:
        yield url + "?charset=utf8mb4"
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh warehouse URL, once on SQLite (a file in tmp_path) and once on the local PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'w.sqlite'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
