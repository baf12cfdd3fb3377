"""A throwaway PostgreSQL cluster for the tests, and database URLs on SQLite or PostgreSQL.

Fixtures (registered in ``tests/conftest.py``):

- ``pg_cluster`` (session): a private cluster started with Debian's ``postgresql``
  binaries on a free 127.0.0.1 port, trust auth on loopback only, stopped and
  deleted at the end. It starts only when a test asks for PostgreSQL.
- ``db_url``: parametrized ``[sqlite]`` / ``[postgres]``; the URL of a fresh, empty
  database (a new SQLite file, or ``CREATE DATABASE`` with a unique name), so tests
  never see each other's rows. For tests that migrate and query in-process::

      def test_ingest(db_url: str) -> None:
          db.upgrade(db_url)
          engine = db.make_engine(db_url)

- ``coordinator_db_url``: the ``CAMFLEET_DATABASE_URL`` that ``fleet_factory`` (and
  so ``three_cameras``) gives the coordinator process; SQLite in the coordinator's
  data folder unless a test asks for both backends with the ``BOTH_DATABASES`` mark::

      @BOTH_DATABASES
      def test_reconcile(three_cameras: RunningFleet) -> None: ...

  It is not parametrized by default so the slow real-process tests run on SQLite
  only, and a test opts in where the database is what it exercises.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from bench.common import free_port

# Debian installs each major version side by side; PATH wins, then the newest.
DEBIAN_PATTERN = "/usr/lib/postgresql/*/bin"
SUPERUSER = "postgres"
BACKENDS = ("sqlite", "postgres")

BOTH_DATABASES = pytest.mark.parametrize("coordinator_db_url", BACKENDS, indirect=True)
"""Run a ``fleet_factory``/``three_cameras`` test with the coordinator on SQLite and on PostgreSQL."""


class PostgresMissing(Exception):
    """No ``initdb``/``pg_ctl`` on this machine."""


def find_bin_dir(path: str | None = None, pattern: str = DEBIAN_PATTERN) -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: ``path`` (default PATH), then Debian's newest."""
    initdb, pg_ctl = shutil.which("initdb", path=path), shutil.which("pg_ctl", path=path)
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    candidates = [
        Path(d)
        for d in glob.glob(pattern)
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists()
    ]

    def major(d: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in d.parent.name.split(".") if p.isdigit())

    if not candidates:
        raise PostgresMissing("PostgreSQL (initdb, pg_ctl) not found: apt-get install postgresql")
    return max(candidates, key=major)


@dataclass
class PgCluster:
    """A running throwaway cluster: where it lives and how to reach it."""

    bin_dir: Path
    root: Path
    port: int
    run_as: list[str]

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def url(self, dbname: str) -> str:
        """A SQLAlchemy URL for ``dbname`` over TCP on loopback."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit psycopg connection (CREATE DATABASE cannot run in a transaction)."""
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=dbname, autocommit=True
        )

    def create_database(self) -> str:
        """A fresh empty database with a unique name; its name."""
        name = f"t_{secrets.token_hex(6)}"
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing any connection a killed coordinator left behind."""
        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``pg_ctl`` on this cluster as the cluster's owner."""
        return run([*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args])


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; on failure raise with its output, which says what PostgreSQL disliked."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    return proc


def unprivileged() -> tuple[list[str], int | None, int | None]:
    """The prefix that drops root (initdb and postgres refuse it), and that user's uid/gid."""
    if os.geteuid() != 0:
        return [], None, None
    for name in (SUPERUSER, "nobody"):
        with contextlib.suppress(KeyError):
            user = pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"], user.pw_uid, user.pw_gid
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run as")


def start_cluster() -> PgCluster:
    """initdb into a new temp folder and start it on a free loopback port; wait until it answers."""
    bin_dir = find_bin_dir()
    run_as, uid, gid = unprivileged()
    # Not under pytest's tmp_path: its folders are 0700 root, which the postgres user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="camfleet-pg-"))
    cluster = PgCluster(bin_dir=bin_dir, root=root, port=free_port(), run_as=run_as)
    cluster.socket_dir.mkdir()
    if uid is not None and gid is not None:
        for path in (root, cluster.socket_dir):
            os.chown(path, uid, gid)
    try:
        run(
            [
                *run_as,
                str(bin_dir / "initdb"),
                "-D",
                str(cluster.data_dir),
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        # listen on 127.0.0.1 only; the socket stays in our folder; durability is not wanted here
        options = (
            f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {cluster.socket_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = root / "postgres.log"
        cluster.pg_ctl("start", "-w", "-t", "60", "-l", str(log), "-o", options)
        wait_accepting(cluster, timeout_s=30)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def wait_accepting(cluster: PgCluster, timeout_s: float) -> None:
    """Wait until the server accepts a connection on its port."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with cluster.connect() as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def stop_cluster(cluster: PgCluster) -> None:
    """Stop the server (fast: roll back open sessions) and delete its folder."""
    try:
        if (cluster.data_dir / "postmaster.pid").exists():
            cluster.pg_ctl("stop", "-m", "fast", "-w", "-t", "60")
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster for the whole test run; fails if PostgreSQL is missing."""
    try:
        cluster = start_cluster()
    except PostgresMissing as err:
        pytest.fail(str(err), pytrace=False)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture
def postgres_url(pg_cluster: PgCluster) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped after the test."""
    name = pg_cluster.create_database()
    try:
        yield pg_cluster.url(name)
    finally:
        pg_cluster.drop_database(name)


def backend_url(request: pytest.FixtureRequest, backend: str, sqlite_path: Path) -> str:
    """A fresh database URL on ``backend``; PostgreSQL is started only when asked for."""
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    if backend == "sqlite":
        return f"sqlite:///{sqlite_path}"
    raise ValueError(f"unknown database backend {backend!r}; use one of {BACKENDS}")


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on SQLite and then on PostgreSQL (ids ``sqlite``, ``postgres``)."""
    return backend_url(request, request.param, tmp_path / "camfleet.db")


@pytest.fixture
def coordinator_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The coordinator process's database: SQLite unless parametrized with ``BOTH_DATABASES``."""
    backend = getattr(request, "param", "sqlite")
    # the same file the coordinator would pick by default in its data folder
    return backend_url(request, backend, tmp_path / "coordinator" / "camfleet.db")
