"""A PostgreSQL URL without psycopg installed: the error names the extra that brings it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.support import GENEROUS_S

EXTRA = "pip install 'cleveragents-audit[postgres]'"

#: Runs with psycopg unimportable, as on an install without the postgres extra.
WITHOUT_PSYCOPG = textwrap.dedent(
    """
    import sys
    sys.modules["psycopg"] = None  # `import psycopg` now raises ImportError
    from cleveragents import AuditStorageError
    from cleveragents.infrastructure.persistence.database import open_database

    try:
        open_database(sys.argv[1])
    except AuditStorageError as exc:
        print(exc)
    else:
        print("opened")
    """
)


def without_psycopg(url: str) -> str:
    """What open_database(url) raised, in a process where psycopg cannot be imported."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PSYCOPG, url],
        capture_output=True,
        text=True,
        timeout=GENEROUS_S * 3,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_missing_driver_names_the_postgres_extra() -> None:
    """postgresql:// and postgresql+psycopg:// both say how to install the driver."""
    for url in ("postgresql+psycopg://u:secret@127.0.0.1:1/x", "postgresql://u@127.0.0.1:1/x"):
        message = without_psycopg(url)
        assert message.startswith("cannot use the database URL 'postgresql+psycopg://u"), message
        assert "the PostgreSQL driver (psycopg 3) cannot be imported" in message
        assert message.endswith(f"install it with: {EXTRA}"), message
        assert "secret" not in message


def test_the_command_line_says_it_in_one_line() -> None:
    """main(), which the installed script runs, without psycopg: exit 2, one line, the extra."""
    code = (
        "import sys; sys.modules['psycopg'] = None; "
        "from cleveragents.cli.main import main; sys.argv[0] = 'cleveragents-audit'; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "query", "--database-url", "postgresql://u@127.0.0.1:1/x"],
        capture_output=True,
        text=True,
        timeout=GENEROUS_S * 3,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: cannot use the database URL"), done.stderr
    assert done.stderr.rstrip().endswith(EXTRA), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
