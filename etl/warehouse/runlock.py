"""One ``etl run`` at a time per warehouse: a lock held for the whole run, released when the process ends.

* SQLite: an exclusive ``flock`` on a file beside the database (``<file>.etl-run.lock``, left in place).
  Not on the database file itself: closing another descriptor of that file would drop SQLite's own POSIX
  locks.  The kernel releases it when the process dies, however it dies.
* PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on a connection of its own; advisory locks
  are per database, and end with the session.
* MySQL/MariaDB: ``GET_LOCK`` with no wait, likewise per session.

A second run does not wait: :func:`hold` raises :class:`RunLockedError` at once with a Chinese message,
before anything is written.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa

from etl.errors import EtlError

PG_LOCK_KEY = 0x45544C5F52554E  # "ETL_RUN": one key per database (advisory locks are per database)
MYSQL_LOCK_NAME = "etl_run"


class RunLockedError(EtlError):
    """Another ``etl run`` holds the warehouse: this one did not start."""


def _busy(url: str, since: str | None) -> RunLockedError:
    shown = sa.make_url(url).render_as_string(hide_password=True)
    when = f"（自 {since} 起）" if since else ""
    return RunLockedError(f"数据仓库 {shown} 正在由另一个 etl run 加载{when}；本次运行未开始，请待其结束后再运行")


@contextmanager
def hold(url: str) -> Iterator[None]:
    """Hold the run lock of the warehouse at ``url`` for the ``with`` block; RunLockedError when taken."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        with _file_lock(url, parsed.database):
            yield
    elif backend == "postgresql":
        with _session_lock(url, f"SELECT pg_try_advisory_lock({PG_LOCK_KEY})", None):
            yield
    elif backend in ("mysql", "mariadb"):
        with _session_lock(
            url, f"SELECT GET_LOCK('{MYSQL_LOCK_NAME}', 0)", f"SELECT RELEASE_LOCK('{MYSQL_LOCK_NAME}')"
        ):
            yield
    else:  # another database: no lock (its own transaction isolation is all there is)
        yield


@contextmanager
def _file_lock(url: str, database: str | None) -> Iterator[None]:
    if not database or database == ":memory:":
        yield
        return
    path = f"{database}.etl-run.lock"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            since = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or None
            raise _busy(url, since) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{datetime.now():%Y-%m-%d %H:%M:%S} pid {os.getpid()}".encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _session_lock(url: str, take: str, release: str | None) -> Iterator[None]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            got = conn.exec_driver_sql(take).scalar()
            conn.commit()
            if not got:
                raise _busy(url, None)
            try:
                yield
            finally:
                if release:
                    conn.exec_driver_sql(release)
                    conn.commit()
                # PostgreSQL: closing the session releases the advisory lock
    finally:
        engine.dispose()
