"""``cleveragents-audit bench``: ours against the physical limit and the seed design."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cleveragents.bench.runner import CONTENDERS, GOALS, run_all
from cleveragents.config.settings import Settings

__all__ = ["bench"]


def bench(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Which kind of database to measure: a SQLite URL (temporary files are made "
            "beside it) or a PostgreSQL database (a temporary schema per contender). "
            "(default: the settings' URL)",
            show_default=False,
        ),
    ] = None,
    entries: Annotated[int, typer.Option(min=1000, help="Entries per contender.")] = 20_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Measure, in one run: the raw insert limit, the seed design, and this service.

    For each: persisted entries per second end to end, record() latency on the
    caller's thread flat out and paced at 5,000/s (p50, p99, p99.9, max) and peak
    RSS; then the ratios ours/limit and ours/seed.
    """
    url = database_url if database_url is not None else Settings().database_url
    err = Console(stderr=True)
    try:
        if err.is_terminal and not as_json:
            with Progress(console=err, transient=True) as progress:
                task = progress.add_task("measuring", total=len(CONTENDERS))
                report = run_all(url, entries, on_done=lambda _n: progress.advance(task))
        else:
            report = run_all(url, entries)
    except Exception as exc:  # a contender failed, or the database is unusable
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    _print_table(Console(), report)


def _print_table(console: Console, report: dict[str, Any]) -> None:
    console.print(_contenders_table(report))
    console.print(
        "limit: raw DBAPI bulk insert of the same rows (sqlite3 executemany / psycopg COPY); "
        "seed: the seed design (ORM INSERT + COMMIT per entry on a daemon thread); "
        "async, sync: this service."
    )
    console.print(_goals_table(report))


def _contenders_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"{report['entries']:,} entries per contender on {report['database']}")
    table.add_column("contender")
    table.add_column("persisted/s", justify="right")
    table.add_column("record() µs, flat out\np50 / p99 / p99.9 / max", justify="right")
    table.add_column("record() µs, 5,000/s\np50 / p99 / p99.9 / max", justify="right")
    table.add_column("peak RSS\nMiB", justify="right")
    for name in CONTENDERS:
        figures = report["contenders"][name]
        latencies = [_latencies(figures.get(pace)) for pace in ("flat", "paced")]
        table.add_row(
            name,
            f"{figures['persisted_per_s']:,.0f}",
            *latencies,
            f"{figures['peak_rss_mib']:.0f}",
        )
    return table


def _goals_table(report: dict[str, Any]) -> Table:
    ratios, ours = report["ratios"], report["contenders"]["async"]["flat"]
    checks = [  # (figure, goal, met, measured)
        (
            "ours/limit",
            f">= {GOALS['async_over_limit_min']:.0%}",
            ratios["async_over_limit"] >= GOALS["async_over_limit_min"],
            f"{ratios['async_over_limit']:.0%}",
        ),
        (
            "ours/seed",
            f">= {GOALS['async_over_seed_min']:.0f}x",
            ratios["async_over_seed"] >= GOALS["async_over_seed_min"],
            f"{ratios['async_over_seed']:.1f}x",
        ),
    ]
    for label, key, goal in (
        ("p50", "p50_us", "record_p50_us_max"),
        ("p99", "p99_us", "record_p99_us_max"),
        ("p99.9", "p999_us", "record_p999_us_max"),
    ):
        checks.append(
            (
                f"record() {label}",
                f"<= {GOALS[goal]:.0f} µs",
                ours[key] <= GOALS[goal],
                f"{ours[key]:.1f} µs",
            )
        )
    goals = Table(title="Against the goals (ours = async, flat out)")
    for column in ("figure", "measured", "goal", "met"):
        goals.add_column(column)
    for label, goal, met, shown in checks:
        goals.add_row(label, shown, goal, "yes" if met else "NO")
    return goals


def _latencies(figures: dict[str, float] | None) -> str:
    if figures is None:
        return "-"
    return " / ".join(
        f"{figures[key]:,.1f}" if figures[key] < 100 else f"{figures[key]:,.0f}"
        for key in ("p50_us", "p99_us", "p999_us", "max_us")
    )
