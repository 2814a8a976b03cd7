"""A PostgreSQL server stopped and started again under a stream of records: nothing is lost.

The test runs a throwaway server of its own (``initdb`` and ``pg_ctl`` in a temporary
directory, trust authentication, a spare port on 127.0.0.1), so the shared server
named by ``CLEVERAGENTS_TEST_POSTGRES_URL`` stays up for the other tests. PostgreSQL
refuses to run as root; as root the server runs as the ``postgres`` OS user.

Without PostgreSQL binaries the test is skipped with that reason, unless
``CLEVERAGENTS_TEST_POSTGRES_URL`` is set: then PostgreSQL is expected, and it fails.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cleveragents import AuditService, Settings
from tests.conftest import POSTGRES_URL_ENV, MakeService
from tests.processes import duplicates, stored_rows
from tests.support import GENEROUS_S, wait_until

pytestmark = pytest.mark.postgres

FIRST_PORT = 55432


def unavailable(reason: str) -> None:
    """Skip (no PostgreSQL expected here) or fail (CI said there would be PostgreSQL)."""
    if os.environ.get(POSTGRES_URL_ENV):
        pytest.fail(f"{POSTGRES_URL_ENV} is set, but a throwaway server cannot run: {reason}")
    pytest.skip(f"a throwaway PostgreSQL server cannot run here: {reason}")


def postgres_bin_dir() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: on PATH, or Debian's newest version."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


def spare_ports() -> Iterator[int]:
    """Ports from FIRST_PORT up that nothing listens on at 127.0.0.1 now.

    Test runs going on at the same time start at different offsets (by process id);
    one may still take a port between this check and the server's start, so the
    caller tries the next one when the start fails.
    """
    offset = os.getpid() % 100
    for index in range(200):
        port = FIRST_PORT + (offset + index) % 200
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        yield port


@dataclass
class ThrowawayServer:
    """A PostgreSQL server in a temporary directory, started and stopped with pg_ctl."""

    bin_dir: Path
    root: Path
    port: int
    as_user: str | None  # run the binaries as this OS user (when we are root)

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    @property
    def url(self) -> str:
        """A SQLAlchemy URL of the server's ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program: str, *args: str, check: bool = True) -> bool:
        """Run one of the server's programs (as the postgres user when we are root)."""
        command = [str(self.bin_dir / program), *args]
        if self.as_user is not None:
            command = ["runuser", "-u", self.as_user, "--", *command]
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=GENEROUS_S * 3, check=False
        )
        if check:
            assert completed.returncode == 0, f"{program} {args}: {completed.stderr}"
        return completed.returncode == 0

    def init(self) -> None:
        """Create the cluster: trust authentication, no fsync at init (it is thrown away)."""
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def start(self, *, check: bool = True) -> bool:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c shared_buffers=16MB -c max_connections=20"
        )
        log = str(self.root / "server.log")
        arguments = ["-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "30", "start"]
        return self.run("pg_ctl", *arguments, check=check)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: abort sessions, clean shutdown) and wait until it is down."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def is_running(self) -> bool:
        """True when the postmaster runs."""
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "status"]
        if self.as_user is not None:
            command = ["runuser", "-u", self.as_user, "--", *command]
        return subprocess.run(command, capture_output=True, timeout=GENEROUS_S).returncode == 0


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayServer]:
    """A running throwaway server; always stopped and deleted afterwards."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        unavailable("initdb and pg_ctl are not installed")
    assert bin_dir is not None
    as_user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no 'postgres' OS user to run the server")
        if shutil.which("runuser") is None:
            unavailable("running as root and runuser is not installed")
        as_user = "postgres"
    root = Path(tempfile.mkdtemp(prefix="cleveragents-pg-"))
    if as_user is not None:
        shutil.chown(root, as_user, as_user)
    server = ThrowawayServer(bin_dir, root, 0, as_user)
    try:
        server.init()
        for attempt, port in enumerate(spare_ports()):
            server.port = port
            if server.start(check=attempt == 4):  # a port taken meanwhile: try the next one
                break
        yield server
    finally:
        try:
            if server.data.exists() and server.is_running():
                server.stop("immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)


def test_a_server_restart_during_a_run_of_records_loses_nothing(
    throwaway_postgres: ThrowawayServer, make_service: MakeService
) -> None:
    """Stop the server while records stream in, record for a while, start it: all stored once."""
    server = throwaway_postgres
    service = make_service(database_url=server.url, audit_retry_deadline=60.0)
    recorded: list[str] = []
    stop_recording = threading.Event()
    errors: list[BaseException] = []

    def producer() -> None:  # ~2000 records a second, in bursts of 20
        try:
            while not stop_recording.is_set():
                for _ in range(20):
                    seq = len(recorded)
                    recorded.append(
                        service.record("tool.invoked", actor="agent", details={"seq": seq}).event_id
                    )
                stop_recording.wait(0.01)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=producer, name="producer")
    thread.start()
    try:
        wait_until(lambda: len(recorded) >= 1000, what="1000 records before the stop")
        server.stop("fast")
        written_while_down = service.stats().written
        at_stop = len(recorded)
        wait_until(lambda: len(recorded) >= at_stop + 2000, what="2000 records while down")
        assert service.stats().written == written_while_down, "the server was not down"
        server.start()
        at_start = len(recorded)
        wait_until(lambda: len(recorded) >= at_start + 1000, what="1000 records after the start")
    finally:
        stop_recording.set()
        thread.join(GENEROUS_S)
    assert errors == []
    assert service.flush(GENEROUS_S * 3) is True
    stats = service.stats()
    assert stats.retried > 0
    assert (stats.written, stats.failed, stats.spooled) == (len(recorded), 0, 0)
    rows = stored_rows(server.url)
    event_ids = [event_id for event_id, actor, _ in rows if actor == "agent"]  # not system rows
    assert duplicates(event_ids) == {}
    assert event_ids == recorded  # each exactly once, in recording order


def test_a_synchronous_service_reconnects_after_a_restart(
    throwaway_postgres: ThrowawayServer,
) -> None:
    """Sync mode: record() raises while the server is down and works again once it is back."""
    server = throwaway_postgres
    with AuditService(Settings(database_url=server.url, audit_async=False)) as service:
        first = service.record("session.started")
        server.stop("fast")
        with pytest.raises(Exception, match=r"(?i)connect|terminat|closed"):
            service.record("tool.invoked", details={"while": "down"})
        server.start()
        again = service.record("session.ended")
        assert again.id > first.id
        assert [e.event_type.value for e in service.query()] == [
            "session.started",
            "session.ended",
        ]
        stats = service.stats()
        assert (stats.written, stats.failed) == (2, 1)


def test_the_first_record_after_a_restart_needs_no_retry(
    throwaway_postgres: ThrowawayServer,
) -> None:
    """Pooled connections that died with the server are replaced on checkout (pool pre-ping)."""
    server = throwaway_postgres
    with AuditService(Settings(database_url=server.url, audit_async=False)) as service:
        service.record("session.started")
        server.stop("fast")
        server.start()
        service.record("session.ended")  # raises if a dead pooled connection is used
        assert (service.stats().written, service.stats().failed) == (2, 0)
