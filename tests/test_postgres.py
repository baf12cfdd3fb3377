"""``camfleet coordinator`` with ``CAMFLEET_DATABASE_URL=postgresql+psycopg://...`` as a real process."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.demo import stop_all
from tests.conftest import RunningFleet
from tests.pg import PgCluster, PostgresMissing, find_bin_dir


def make_bin(folder: Path) -> Path:
    """A folder with executable ``initdb`` and ``pg_ctl`` stand-ins."""
    folder.mkdir(parents=True)
    for name in ("initdb", "pg_ctl"):
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)
    return folder


def test_the_newest_debian_postgresql_is_found_when_path_has_none(tmp_path: Path) -> None:
    for version in ("9.6", "13", "15"):
        make_bin(tmp_path / "lib" / version / "bin")
    (tmp_path / "empty").mkdir()
    found = find_bin_dir(path=str(tmp_path / "empty"), pattern=str(tmp_path / "lib" / "*" / "bin"))
    assert found == tmp_path / "lib" / "15" / "bin"  # by number: 15 beats 9.6


def test_postgresql_on_path_comes_first(tmp_path: Path) -> None:
    on_path = make_bin(tmp_path / "local" / "bin")
    make_bin(tmp_path / "lib" / "15" / "bin")
    found = find_bin_dir(path=str(on_path), pattern=str(tmp_path / "lib" / "*" / "bin"))
    assert found == on_path


def test_no_postgresql_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(PostgresMissing, match="apt-get install postgresql"):
        find_bin_dir(path=str(tmp_path), pattern=str(tmp_path / "none" / "*" / "bin"))


@pytest.mark.slow
def test_coordinator_process_migrates_and_serves_on_postgresql(
    tmp_path: Path, pg_cluster: PgCluster, postgres_url: str
) -> None:
    url = postgres_url
    assert url.startswith("postgresql+psycopg://")
    fleet = RunningFleet(root=tmp_path, coordinator_env={"CAMFLEET_DATABASE_URL": url})
    try:
        fleet.start_coordinator()  # python -m app.cli coordinator; waits for /health
        with fleet.client() as c:
            health = c.get("/health")
            nodes = c.get("/api/v1/nodes")
            refused = c.get("/api/v1/nodes", headers={"Authorization": "Bearer wrong"})
    finally:
        stop_all(fleet.children(), timeout_s=20)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert nodes.status_code == 200, nodes.text
    assert nodes.json() == {"nodes": [], "online": 0, "total": 0, "pending": 0}
    assert refused.status_code == 401
    # the coordinator migrated PostgreSQL itself and left no SQLite file behind
    assert not (tmp_path / "coordinator" / "camfleet.db").exists()
    with pg_cluster.connect(url.rsplit("/", 1)[-1]) as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
    assert len(version) == 1
    assert {"node", "recording_session", "command_result", "recording"} <= tables
