"""Who drives a run: one process at a time, and whether it is still alive.

A run's driver writes its identity (host, pid, the process's start time) into the store when it
takes the run, and refreshes a heartbeat while it runs. Another process may take the run over only
when that driver is gone: on the same host, its pid no longer names the same process (the start time
guards against a reused pid); on another host, its heartbeat is older than HEARTBEAT_TIMEOUT.
So a second `evolve resume` of a live run is refused, and a run whose driver was killed (SIGKILL, a
crash, a lost machine) shows as "stopped (driver gone)" instead of "running" forever.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from typing import Any

#: How often a driver refreshes its heartbeat, and how old a heartbeat may be before a driver on
#: another host counts as gone.
HEARTBEAT_EVERY = 10.0
HEARTBEAT_TIMEOUT = 120.0


@dataclasses.dataclass(frozen=True)
class Driver:
    """A process that drives a run: host name, pid, and that process's start time (a clock-tick count
    from /proc, or None where there is no /proc)."""

    host: str
    pid: int
    started: int | None

    @classmethod
    def this_process(cls) -> "Driver":
        return cls(socket.gethostname(), os.getpid(), _start_ticks(os.getpid()))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Driver":
        return cls(str(data.get("host", "?")), int(data.get("pid", -1)), data.get("started"))

    def alive(self, heartbeat: float | None, now: float | None = None) -> bool:
        """Whether this driver may still be running the run."""
        if self.host == socket.gethostname():
            if self.pid <= 0:
                return False
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:  # a process of another user: it exists
                pass
            return self.started is None or _start_ticks(self.pid) in (None, self.started)
        now = time.time() if now is None else now
        return heartbeat is not None and now - heartbeat < HEARTBEAT_TIMEOUT

    def describe(self, heartbeat: float | None) -> str:
        seen = "" if heartbeat is None else f", last heard from {time.time() - heartbeat:.0f} s ago"
        return f"process {self.pid} on {self.host}{seen}"


def _start_ticks(pid: int) -> int | None:
    """The start time of process `pid` in clock ticks since boot (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its closing one
    fields = stat.rsplit(")", 1)[-1].split()
    return int(fields[19]) if len(fields) > 19 else None


class Heartbeat:
    """Calls `beat()` every HEARTBEAT_EVERY seconds on a daemon thread until stopped, so a driver
    busy in a long evaluation still shows as alive to other hosts."""

    def __init__(self, beat, every: float = HEARTBEAT_EVERY):
        import threading

        self._beat, self._every = beat, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evolve-heartbeat", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._beat()
            except Exception:  # noqa: BLE001 - a busy or vanished store: the next beat tries again
                pass
