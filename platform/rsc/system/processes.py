"""Processes the platform starts: their output goes to a log file, and an early exit carries its tail.

A child whose output goes to DEVNULL fails with nothing to go on; one whose output goes to the terminal
buries the run's own progress. So every long-lived child (the Ray head, a detached paper trader) writes
to a log file under the run's ``logs/`` folder, and when it dies before it is ready the error names the
log and quotes its last lines. Ports are checked before a server is started on them: a readiness check
that connects to a port someone else holds would report success and send work to the wrong server.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

TAIL_LINES = 20


class ProcessFailed(RuntimeError):
    """A child process exited early; the message names it, its exit code, its log and the log's tail."""

    def __init__(self, what: str, code: int | None, log_path: Path, lines: int = TAIL_LINES):
        self.what, self.code, self.log_path = what, code, log_path
        self.tail = tail(log_path, lines)
        ended = f"exited with code {code}" if code is not None else "stopped"
        super().__init__(f"{what} {ended}; full log: {log_path}\n--- last lines ---\n{self.tail}")


class PortInUse(RuntimeError):
    """A port the run needs is held by another process."""


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of a text file ("" when it is missing)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now (a bind test, nothing is sent to a holder)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_holder(port: int) -> str | None:
    """``"pid 123 (python3 -m http.server)"`` for the process listening on ``port``, when it can be seen."""
    import psutil

    try:
        connections: Iterable = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for connection in connections:
        if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_LISTEN:
            if connection.pid is None:
                return None
            try:
                command = " ".join(psutil.Process(connection.pid).cmdline())[:120]
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                command = "?"
            return f"pid {connection.pid} ({command})"
    return None


def require_free_port(host: str, port: int, what: str, setting: str) -> None:
    """Raise :class:`PortInUse` naming the port, its holder and the setting that moves it."""
    if port_is_free(host, port):
        return
    holder = port_holder(port)
    held = f"held by {holder}" if holder else "held by another process"
    raise PortInUse(
        f"port {port} on {host} ({what}) is already in use, {held}: stop that process, or set {setting} "
        "to a free port"
    )
