"""The real migrations build the database, on SQLite and PostgreSQL, and go down and up again."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect

from app import db

TABLES = {"node", "recording_session", "command_result", "recording", "offload_job", "offload_file"}


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_on_an_empty_database(db_url: str) -> None:
    db.upgrade(db_url)
    assert tables(db_url) == TABLES
    db.downgrade(db_url, "base")
    assert tables(db_url) == set()
    db.upgrade(db_url)
    assert tables(db_url) == TABLES


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import app.nodes.models
    import app.offload.models
    import app.recordings.models
    import app.sessions.models  # noqa: F401

    db.upgrade(db_url)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata
        )
    engine.dispose()
    assert diff == []


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'sub' / 'camfleet.db'}")
    with engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    engine.dispose()
    assert mode == "wal"
