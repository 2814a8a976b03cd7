"""Runs every contender side by side, each in a fresh process on a fresh database."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

__all__ = ["CONTENDERS", "GOALS", "fresh_database", "run_all"]

#: In the order they run: the physical limit, the seed design, then ours.
CONTENDERS = ("limit", "seed", "async", "sync")
#: What the writer must reach (issue "Performance").
GOALS = {
    "async_over_limit_min": 0.40,
    "async_over_seed_min": 25.0,
    "record_p50_us_max": 5.0,
    "record_p99_us_max": 50.0,
    "record_p999_us_max": 1000.0,
}


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new, empty database of the same kind as ``url``, removed afterwards.

    SQLite: a file in a new temporary directory (beside the given file, so on the
    same disk). PostgreSQL: a new schema in the given database.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        near = Path(parsed.database).absolute().parent if parsed.database else None
        folder = Path(tempfile.mkdtemp(prefix="cleveragents-bench-", dir=near))
        try:
            yield f"sqlite:///{folder / 'bench.db'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        query = dict(parsed.query)
        query["options"] = f"-csearch_path={schema}"
        yield parsed.set(query=query).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def run_all(
    url: str, entries: int, *, on_done: Callable[[str], None] = lambda _name: None
) -> dict[str, Any]:
    """Measure every contender on a fresh database like ``url``; return figures and ratios."""
    results: dict[str, dict[str, Any]] = {}
    for name in CONTENDERS:
        with fresh_database(url) as database_url:
            completed = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cleveragents.bench.worker",
                    name,
                    database_url,
                    str(entries),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
        if completed.returncode != 0:
            raise RuntimeError(f"the {name} contender failed:\n{completed.stderr.strip()}")
        results[name] = json.loads(completed.stdout.strip().splitlines()[-1])
        on_done(name)
    ours = results["async"]["persisted_per_s"]
    return {
        "database": make_url(url).get_backend_name(),
        "entries": entries,
        "contenders": results,
        "ratios": {
            "async_over_limit": ours / results["limit"]["persisted_per_s"],
            "async_over_seed": ours / results["seed"]["persisted_per_s"],
        },
        "goals": GOALS,
    }
