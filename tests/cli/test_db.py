"""``db current`` and ``db upgrade``: new, at head, made before migrations, behind, unknown."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import create_engine, text

from cleveragents import AuditSchemaError, AuditService, Settings
from cleveragents.infrastructure.persistence.schema import VERSION_TABLE, head_revision
from tests.cli.conftest import Trail, run_cli
from tests.schema_support import ROWS, at_revision, insert_base_rows, legacy_table


def current(url: str) -> dict[str, object]:
    """``db current --json`` parsed."""
    result = run_cli("db", "current", "--database-url", url, "--json")
    assert result.exit_code == 0, result.stderr
    return orjson.loads(result.stdout)  # type: ignore[no-any-return]


def test_current_at_head(trail: Trail) -> None:
    """A service-made database is at head; --check exits 0."""
    assert current(trail.url) == {
        "database": trail.url,
        "revision": head_revision(),
        "head": head_revision(),
        "status": "head",
        "at_head": True,
    }
    result = run_cli("db", "current", "--database-url", trail.url, "--check")
    assert result.exit_code == 0
    assert (
        result.stdout
        == f"the audit database {trail.url!r} is at schema revision {head_revision()} (head)\n"
    )


def test_upgrade_creates_a_new_database(database_url: str) -> None:
    """db upgrade on an empty database creates the schema at head; again, nothing to do."""
    result = run_cli("db", "upgrade", "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(
        f"created the audit schema at revision {head_revision()} (head) in "
    )
    again = run_cli("db", "upgrade", "--database-url", database_url, "--json")
    assert orjson.loads(again.stdout)["from_status"] == "head"
    assert current(database_url)["at_head"] is True


def test_a_table_made_before_migrations_is_adopted(database_url: str) -> None:
    """The service refuses it naming db upgrade; --check fails; db upgrade adopts it, rows kept."""
    legacy_table(database_url, with_details_json=False)
    insert_base_rows(database_url)
    with pytest.raises(AuditSchemaError, match="cleveragents-audit db upgrade"):
        AuditService(Settings(database_url=database_url))
    assert current(database_url)["status"] == "unversioned"
    checked = run_cli("db", "current", "--database-url", database_url, "--check")
    assert checked.exit_code == 1
    assert "made before schema migrations" in checked.stdout
    query = run_cli("query", "--database-url", database_url)
    assert query.exit_code == 2
    assert "cleveragents-audit db upgrade" in query.stderr
    result = run_cli("db", "upgrade", "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("adopted the table made before migrations in ")
    listed = run_cli("query", "--database-url", database_url, "--json")
    assert listed.stdout.count("\n") == len(ROWS)


def test_a_database_behind_head_is_upgraded(database_url: str, next_revision: str) -> None:
    """With a newer revision shipped: current says behind, upgrade migrates, rows kept."""
    at_revision(database_url, next_revision)
    insert_base_rows(database_url)
    assert current(database_url) | {"database": None} == {
        "database": None,
        "revision": next_revision,
        "head": "test_next",
        "status": "behind",
        "at_head": False,
    }
    result = run_cli("db", "upgrade", "--database-url", database_url, "--json")
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout) | {"database": None} == {
        "database": None,
        "from": next_revision,
        "from_status": "behind",
        "to": "test_next",
        "head": "test_next",
    }
    assert current(database_url)["at_head"] is True


def test_an_unknown_revision_is_refused(trail: Trail) -> None:
    """A revision from a newer version: current reports it, upgrade refuses in one line."""
    engine = create_engine(trail.url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'ffff9999'"))
    finally:
        engine.dispose()
    assert current(trail.url)["status"] == "unknown"
    result = run_cli("db", "upgrade", "--database-url", trail.url)
    assert result.exit_code == 2
    assert "ffff9999" in result.stderr
    assert "newer version" in result.stderr
    assert result.stderr.count("\n") == 1
