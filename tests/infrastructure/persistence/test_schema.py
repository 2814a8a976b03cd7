"""The schema under Alembic: created at head, checked on start, upgraded, adopted, refused."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    create_engine,
    inspect,
    text,
)
from sqlalchemy.orm import Session

from cleveragents import AuditSchemaError, AuditService, AuditStorageError, Settings
from cleveragents.domain.verification import FindingKind
from cleveragents.infrastructure.persistence import schema
from cleveragents.infrastructure.persistence.database import create_schema, open_database
from cleveragents.infrastructure.persistence.schema import (
    BASE_REVISION,
    MIGRATIONS_DIR,
    VERSION_TABLE,
    head_revision,
    read_state,
    upgrade,
)
from cleveragents.infrastructure.persistence.table import Base
from tests.schema_support import ROWS, at_revision, insert_base_rows, legacy_table
from tests.support import GENEROUS_S, sqlite_path


def version_of(url: str) -> str | None:
    """The revision stored in the version table (None when there is none)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return read_state(connection).revision
    finally:
        engine.dispose()


def index_columns(url: str) -> dict[str, list[str]]:
    """Index name -> columns of audit_log."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            indexes = inspect(connection).get_indexes("audit_log")
            return {str(ix["name"]): list(ix["column_names"]) for ix in indexes}  # type: ignore[arg-type]
    finally:
        engine.dispose()


def run_sql(url: str, *statements: str, params: dict[str, Any] | None = None) -> None:
    """Execute statements in one transaction of a plain engine."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement), params or {})
    finally:
        engine.dispose()


def assert_rows_kept(url: str) -> None:
    """Every one of ROWS reads back through the service, field by field."""
    with AuditService(Settings(database_url=url, audit_async=False)) as service:
        entries = service.query(correlation_id="run-1")
    assert [e.event_id for e in entries] == [row["event_id"] for row in ROWS]
    for entry, row in zip(entries, ROWS, strict=True):
        assert entry.actor == "agent:é"
        assert entry.created_at == row["created_at"]
        assert entry.details["nested"] == {"a": [1, "ü"]}


# -- the models and the migrations agree ---------------------------------------------------


def test_migrations_make_exactly_the_models(database_url: str) -> None:
    """`alembic check`: a database migrated to head differs in nothing from table.py."""
    open_database(database_url).dispose()
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table": VERSION_TABLE, "compare_type": True}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_the_migrations_form_one_line_of_history() -> None:
    """One head, one base, every revision reachable from head; the base is 0001."""
    scripts = schema._scripts()
    assert len(scripts.get_heads()) == 1
    assert scripts.get_bases() == [BASE_REVISION]
    history = list(scripts.walk_revisions())
    assert history[-1].revision == BASE_REVISION
    assert history[0].revision == head_revision()


def test_migrations_ship_inside_the_package() -> None:
    """env.py and the revisions sit in the package, so an installed wheel has them."""
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "versions" / "v0001_audit_log.py").is_file()
    assert MIGRATIONS_DIR.is_relative_to(Path(schema.__file__).parent)


# -- on start ------------------------------------------------------------------------------


def test_a_new_database_is_created_at_head(database_url: str) -> None:
    """A service on an empty database makes the table, the filter indexes and the version."""
    with AuditService(Settings(database_url=database_url, audit_async=False)) as service:
        service.record("tool.invoked", actor="a")
    assert version_of(database_url) == head_revision()
    indexes = index_columns(database_url)
    assert indexes["ix_audit_log_actor"] == ["actor", "id"]
    assert indexes["ix_audit_log_event_type"] == ["event_type", "id"]
    assert indexes["ix_audit_log_created_at"] == ["created_at"]


def test_a_database_at_head_is_used_as_it_is(database_url: str) -> None:
    """Opening again keeps the rows and the version."""
    with AuditService(Settings(database_url=database_url, audit_async=False)) as service:
        service.record("tool.invoked", actor="first")
    with AuditService(Settings(database_url=database_url, audit_async=False)) as service:
        assert service.count(actor="first") == 1
    assert version_of(database_url) == head_revision()


def test_an_unversioned_database_is_refused_naming_db_upgrade(database_url: str) -> None:
    """A table made before migrations (create_all) is refused on start, with what to run."""
    engine = create_engine(database_url)
    Base.metadata.create_all(engine)
    engine.dispose()
    with pytest.raises(AuditSchemaError) as caught:
        AuditService(Settings(database_url=database_url))
    assert "cleveragents-audit db upgrade" in str(caught.value)
    assert "before schema migrations" in str(caught.value)
    assert isinstance(caught.value, AuditStorageError)
    assert version_of(database_url) is None  # nothing was changed


def test_an_unknown_revision_is_refused_and_left_alone(database_url: str) -> None:
    """A version this package does not ship (a newer one's) is refused, also by upgrade()."""
    open_database(database_url).dispose()
    run_sql(database_url, f"UPDATE {VERSION_TABLE} SET version_num = 'ffff9999'")
    with pytest.raises(AuditSchemaError, match="newer version"):
        AuditService(Settings(database_url=database_url))
    engine = create_engine(database_url)
    try:
        with pytest.raises(AuditSchemaError, match="ffff9999"):
            upgrade(engine, "the db")
    finally:
        engine.dispose()
    assert version_of(database_url) == "ffff9999"


def test_a_dropped_table_is_made_again(database_url: str) -> None:
    """As before migrations, a service whose table is gone makes it again (the version stays).

    The chain goes on from the head the dropped table left: verify shows the entries as deleted.
    """
    with AuditService(Settings(database_url=database_url, audit_async=False)) as service:
        service.record("tool.invoked", actor="before")  # seq 2, between writer.opened and .closed
    run_sql(database_url, "DROP TABLE audit_log")
    with AuditService(Settings(database_url=database_url, audit_async=False)) as service:
        service.record("tool.invoked", actor="again")
        assert service.count() == 1
        report = service.verify()
    assert version_of(database_url) == head_revision()
    assert report.exit_code == 1
    assert [(f.kind, f.seq) for f in report.findings] == [(FindingKind.DELETED, 1)]
    assert "seq 1..3 is missing" in report.findings[0].message


def test_readers_create_nothing(tmp_path: Path, database_url: str) -> None:
    """open_database(create=False): a missing file or an empty database is refused, untouched."""
    missing = tmp_path / "nowhere.db"
    with pytest.raises(AuditStorageError, match="no audit database at"):
        open_database(f"sqlite:///{missing}", create=False)
    assert not missing.exists()
    if database_url.startswith("sqlite"):
        sqlite3.connect(sqlite_path(database_url)).close()  # an empty file
    with pytest.raises(AuditSchemaError, match="no audit trail yet"):
        open_database(database_url, create=False)
    assert version_of(database_url) is None


def test_a_session_gets_the_same_checks(database_url: str) -> None:
    """create_schema(session) creates an empty database at head and refuses an unversioned one."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            create_schema(session)
        assert version_of(database_url) == head_revision()
        run_sql(database_url, f"DROP TABLE {VERSION_TABLE}")
        with Session(engine) as session, pytest.raises(AuditSchemaError, match="db upgrade"):
            create_schema(session)
    finally:
        engine.dispose()


def test_services_starting_together_create_the_schema_once(database_url: str) -> None:
    """Eight threads open the same new database at once: all succeed, one version row."""
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait(GENEROUS_S)
            open_database(database_url).dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(GENEROUS_S)
    assert not errors
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    finally:
        engine.dispose()
    assert rows == [(head_revision(),)]


# -- upgrades ------------------------------------------------------------------------------


def test_upgrade_from_the_first_revision_keeps_the_rows(database_url: str) -> None:
    """A database of revision 0001 with rows in it upgrades to head with every field intact."""
    at_revision(database_url, BASE_REVISION)
    insert_base_rows(database_url)
    engine = create_engine(database_url)
    try:
        before, after = upgrade(engine, "the db")
    finally:
        engine.dispose()
    assert before.revision == BASE_REVISION
    assert after.status == "head"
    assert_rows_kept(database_url)


def test_upgrade_from_the_first_revision_chains_the_rows_there(database_url: str) -> None:
    """Rows of revision 0001 become seq 1..n in id order, linked, and the trail verifies."""
    at_revision(database_url, BASE_REVISION)
    insert_base_rows(database_url)
    engine = create_engine(database_url)
    try:
        upgrade(engine, "the db")
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT event_id, seq, prev_hash, entry_hash, writer_id"
                    " FROM audit_log ORDER BY id"
                )
            ).all()
            head = connection.execute(text("SELECT head_seq, head_hash FROM audit_chain")).one()
    finally:
        engine.dispose()
    assert [(r.event_id, r.seq, r.writer_id) for r in rows] == [
        (row["event_id"], n, None) for n, row in enumerate(ROWS, start=1)
    ]
    assert rows[0].prev_hash == "0" * 64
    assert [r.prev_hash for r in rows[1:]] == [r.entry_hash for r in rows[:-1]]
    assert tuple(head) == (len(ROWS), rows[-1].entry_hash)
    with AuditService(Settings(database_url=database_url)) as service:
        service.record("tool.invoked", actor="after the upgrade")
        assert service.flush(GENEROUS_S)
        report = service.verify()
    assert report.intact, report.to_dict()
    assert report.entries == len(ROWS) + 2  # and this service's writer.opened


@pytest.mark.parametrize("with_details_json", [True, False], ids=["current", "pre-jsonb"])
def test_upgrade_adopts_a_table_made_before_migrations(
    database_url: str, with_details_json: bool
) -> None:
    """db upgrade adds what the table lacks, rebuilds the filter indexes, stamps, keeps the rows."""
    legacy_table(database_url, with_details_json=with_details_json)
    insert_base_rows(database_url)
    engine = create_engine(database_url)
    try:
        before, after = upgrade(engine, "the db")
        assert (before.status, after.status) == ("unversioned", "head")
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table": VERSION_TABLE, "compare_type": True}
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
    assert index_columns(database_url)["ix_audit_log_actor"] == ["actor", "id"]
    assert_rows_kept(database_url)


def test_upgrade_refuses_a_foreign_audit_log(database_url: str) -> None:
    """A table called audit_log that this library did not make is left alone."""
    run_sql(database_url, "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, what TEXT)")
    engine = create_engine(database_url)
    try:
        with pytest.raises(AuditSchemaError, match="not a cleveragents-audit table"):
            upgrade(engine, "the db")
    finally:
        engine.dispose()
    assert version_of(database_url) is None


# -- a later revision: what a schema change and its upgrade look like ----------------------


def test_a_database_behind_head_is_refused_then_upgraded_with_its_rows(
    database_url: str, next_revision: str
) -> None:
    """At the previous revision: start refuses naming db upgrade; upgrade migrates the rows."""
    at_revision(database_url, next_revision)
    insert_base_rows(database_url)
    with pytest.raises(AuditSchemaError) as caught:
        AuditService(Settings(database_url=database_url))
    message = str(caught.value)
    assert "cleveragents-audit db upgrade" in message
    assert f"revision {next_revision}, behind this version's test_next" in message
    engine = create_engine(database_url)
    try:
        before, after = upgrade(engine, "the db")
        with engine.connect() as connection:
            assert "tenant" in {c["name"] for c in inspect(connection).get_columns("audit_log")}
    finally:
        engine.dispose()
    assert (before.status, after.revision) == ("behind", "test_next")
    assert_rows_kept(database_url)
