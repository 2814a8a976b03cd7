"""The side-by-side benchmark: every contender measured, figures sane, nothing left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from cleveragents.bench.runner import CONTENDERS, fresh_database, run_all
from cleveragents.cli.main import app

ENTRIES = 1000


def leftovers(database_url: str) -> list[str]:
    """Temporary databases the benchmark left: bench directories or bench_ schemas."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        folder = Path(str(url.database)).parent
        return sorted(p.name for p in folder.glob("cleveragents-bench-*"))
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            names = connection.execute(
                text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench\\_%'")
            ).scalars()
            return sorted(names)
    finally:
        engine.dispose()


def check_report(report: dict[str, object], database_url: str) -> None:
    """Assert what a reader of the report relies on."""
    assert report["entries"] == ENTRIES
    assert report["database"] == make_url(database_url).get_backend_name()
    contenders = report["contenders"]
    assert isinstance(contenders, dict)
    assert sorted(contenders) == sorted(CONTENDERS)
    for name, figures in contenders.items():
        assert figures["persisted_per_s"] > 0, name
        assert figures["peak_rss_mib"] > 10, name
        for pace in ("flat", "paced"):
            if name == "limit":
                assert pace not in figures
                continue
            p = figures[pace]
            assert 0 < p["p50_us"] <= p["p99_us"] <= p["p999_us"] <= p["max_us"], (name, pace)
    ratios = report["ratios"]
    assert isinstance(ratios, dict)
    ours = contenders["async"]["persisted_per_s"]
    assert ratios["async_over_limit"] == pytest.approx(
        ours / contenders["limit"]["persisted_per_s"]
    )
    assert ratios["async_over_seed"] == pytest.approx(ours / contenders["seed"]["persisted_per_s"])


def test_every_contender_is_measured_on_a_fresh_database(database_url: str) -> None:
    """run_all() measures limit, seed, async and sync and removes its databases afterwards."""
    before = leftovers(database_url)
    done: list[str] = []
    report = run_all(database_url, ENTRIES, on_done=done.append)
    assert done == list(CONTENDERS)
    check_report(report, database_url)
    assert leftovers(database_url) == before


def test_the_command_prints_json(database_url: str) -> None:
    """`bench --json` prints one JSON object with the figures and the ratios."""
    result = CliRunner().invoke(
        app, ["bench", "--database-url", database_url, "--entries", str(ENTRIES), "--json"]
    )
    assert result.exit_code == 0, result.output
    check_report(json.loads(result.stdout), database_url)


def test_the_command_prints_a_table_with_the_goals(sqlite_url: str) -> None:
    """Without --json the command prints the contenders' table and the goals it checks."""
    result = CliRunner().invoke(
        app, ["bench", "--database-url", sqlite_url, "--entries", str(ENTRIES)]
    )
    assert result.exit_code == 0, result.output
    for word in ("limit", "seed", "async", "sync", "ours/limit", "ours/seed", "p99.9"):
        assert word in result.stdout


def test_a_fresh_database_is_empty_and_removed(database_url: str) -> None:
    """fresh_database() yields a new database without the audit table and drops it afterwards."""
    before = leftovers(database_url)
    with fresh_database(database_url) as url:
        engine = create_engine(url)
        try:
            assert inspect(engine).has_table("audit_log") is False
        finally:
            engine.dispose()
        assert url != database_url
        assert len(leftovers(database_url)) == len(before) + 1
    assert leftovers(database_url) == before


def test_an_unusable_database_is_a_one_line_error(tmp_path: Path) -> None:
    """A URL the contenders cannot use ends with exit status 2 and a message, no traceback."""
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}"
    result = CliRunner().invoke(app, ["bench", "--database-url", url, "--entries", "1000"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
