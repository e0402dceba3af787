"""Real processes to break: a private PostgreSQL and Redis, and `fairdrop serve`.

The shared servers are never touched: each fault (stop, freeze, kill, flush) is done to
a server started here, on a free loopback port, by the test that breaks it.

PostgreSQL comes from Debian's PostgreSQL 15 binaries, run as user `postgres` (initdb
refuses root); Redis from `redis-server`. Tests that need them are skipped where they
are missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import psutil
import pytest

from tests.serve import free_port

PG_BIN = Path(os.environ.get("FD_PG_BIN", "/usr/lib/postgresql/15/bin"))


def need_private_postgres() -> None:
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip(f"no PostgreSQL binaries in {PG_BIN}")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no `postgres` system user to run a private PostgreSQL as")


def need_redis_server() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on PATH")


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Retry `check` until it holds; a bound on the wall clock, not a fixed sleep."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


_TEMPLATE: list[Path] = []  # one initdb per test session, copied for each server


def _as_postgres(*command: str, cwd: Path) -> None:
    subprocess.run(
        ["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True, cwd=cwd
    )


def _template() -> Path:
    """A cluster fresh from initdb (8 s on a loaded machine), made once and copied."""
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="fd-pg-template-"))
        shutil.chown(folder, "postgres", "postgres")
        data = folder / "data"
        _as_postgres(
            str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", cwd=folder
        )
        _TEMPLATE.append(data)
    return _TEMPLATE[0]


class PrivatePostgres:
    """A throw-away PostgreSQL cluster in a temporary folder owned by `postgres`."""

    def __init__(self) -> None:
        need_private_postgres()
        self.dir = Path(tempfile.mkdtemp(prefix="fd-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres("cp", "-a", str(_template()), str(self.data))
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *command: str) -> None:
        _as_postgres(*command, cwd=self.dir)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-l",
            str(self.dir / "log"), "start",
        )  # fmt: skip

    def stop(self) -> None:
        """As a crash would: no checkpoint, every backend killed."""
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def processes(self) -> list[psutil.Process]:
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        return [postmaster, *postmaster.children(recursive=True)]

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every process of the server stopped (SIGSTOP): it accepts connections (the
        kernel does) and answers nothing, as a hung host would, until the block ends."""
        stopped = self.processes()
        for p in stopped:
            p.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for p in stopped:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.send_signal(signal.SIGCONT)

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            for p in self.processes():
                p.send_signal(signal.SIGCONT)
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A `redis-server` of the test's own that keeps nothing on disk."""

    def __init__(self) -> None:
        need_redis_server()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--busy-reply-threshold", "100"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._answers, 10, "redis-server started")

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stopped (SIGSTOP) until the block ends: connections hang."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.proc.send_signal(signal.SIGCONT)

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """A script that loops until killed: past 100 ms every other call is refused
        with BUSY, as when a script runs away."""
        import redis

        runner = subprocess.Popen(
            ["redis-cli", "-p", str(self.port), "EVAL", "while true do end", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port, socket_timeout=2)

        def refused() -> bool:
            try:
                probe.ping()
            except redis.exceptions.ResponseError as exc:
                return str(exc).startswith("BUSY")
            return False

        try:
            wait_until(refused, 10, "Redis busy")
            yield
        finally:
            wait_until(lambda: _kill_script(probe), 10, "the script killed")
            runner.wait(timeout=10)
            probe.close()


def _kill_script(probe: Any) -> bool:
    import redis

    try:
        probe.script_kill()
    except redis.exceptions.ResponseError as exc:
        return "No scripts in execution" in str(exc)
    return True


class Served:
    """`fairdrop serve` in a subprocess: its base URL, its process, what it printed."""

    def __init__(self, proc: subprocess.Popen[bytes], base: str, log: IO[str]) -> None:
        self.proc, self.base, self._log = proc, base, log

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def workers(self) -> list[psutil.Process]:
        """The worker processes granian runs (the main process's children)."""
        return [p for p in psutil.Process(self.proc.pid).children() if p.is_running()]

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base}/healthz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False


@contextlib.contextmanager
def fairdrop_serve(env: dict[str, str], *, workers: int = 1) -> Iterator[Served]:
    """`fairdrop serve` as an operator starts it (migrations, then granian)."""
    port = free_port()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port), "--workers",
             str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        served = Served(proc, f"http://127.0.0.1:{port}", log)
        try:
            wait_until(
                lambda: served.healthy() or proc.poll() is not None, 60, "fairdrop serve healthy"
            )
            assert proc.poll() is None, served.output()
            yield served
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
