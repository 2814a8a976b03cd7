"""``cleveragents-audit --version``: the package's version, on stdout, exit 0."""

from __future__ import annotations

import subprocess

import pytest

import cleveragents
from tests.cli.conftest import run_main, script
from tests.support import GENEROUS_S


def test_version_through_the_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """--version prints `cleveragents-audit X.Y.Z` and nothing else; it needs no database."""
    done = run_main("--version", monkeypatch=monkeypatch)
    assert (done.code, done.stdout, done.stderr) == (
        0,
        f"cleveragents-audit {cleveragents.__version__}\n",
        "",
    )


def test_version_of_the_installed_script() -> None:
    """The installed console script answers --version the same way, as a process."""
    done = subprocess.run(
        [script(), "--version"], capture_output=True, text=True, timeout=GENEROUS_S, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"cleveragents-audit {cleveragents.__version__}\n"
    assert done.stderr == ""


def test_version_is_listed_in_the_help(monkeypatch: pytest.MonkeyPatch) -> None:
    """--help names --version."""
    done = run_main("--help", monkeypatch=monkeypatch)
    assert done.code == 0
    assert "--version" in done.stdout
