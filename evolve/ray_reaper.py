"""Ray started by a driver ends with that driver, however the driver ends (kill -9 included).

`ray.init()` without an address starts Ray's processes (GCS, raylet, the raylet's dashboard and
runtime-env agents, workers) from the driver. When the driver is killed with SIGKILL, Ray's own fate
sharing ends the GCS and the raylet, but the agents can outlive them for a minute or more, orphaned:
they try to report the raylet's death to the dead GCS, and ignore SIGTERM while they wait.

So a driver that starts Ray first starts a small guard process and keeps the write end of a pipe to
it. When the pipe closes (the driver let go of Ray, or died), the guard ends the driver's Ray: every
process with a file open in the driver's Ray session directory (each of Ray's processes writes its
logs there), and every process that carries the guard's mark in its environment (everything the
driver started while Ray was starting). A name or a command line would not do: Ray retitles its
processes and overwrites the start of their environment block (/proc/PID/environ), so the mark is
looked for anywhere in that block. The guard runs in a session of its own, so a Ctrl-C meant for the
driver's terminal does not end it early.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import subprocess
import sys
import time
from typing import Iterator

#: The environment variable that marks the processes a driver starts while it starts Ray.
MARK = "EVOLVE_RAY_OWNER"
#: Seconds a process of a driver's Ray gets to exit after SIGTERM before it is killed.
TERMINATE_GRACE = 1.0


class Guard:
    """The guard of one driver's Ray: `started(session_dir)` tells it where that Ray logs; `close()`
    lets go of Ray (the guard then ends what is left of it)."""

    def __init__(self, mark: str, sessions: str):
        self.mark = mark
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, mark, str(os.getpid()), sessions],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, env={k: v for k, v in os.environ.items() if k != MARK},
        )

    def started(self, session_dir: str) -> None:
        """Ray is up, with its processes' logs in `session_dir`."""
        try:
            self.process.stdin.write(f"{session_dir}\n".encode())
            self.process.stdin.flush()
        except BrokenPipeError:  # the guard was ended from outside: Ray runs on, as unguarded Ray does
            pass

    def close(self, timeout: float = 15.0) -> None:
        """Close the pipe and wait (at most `timeout` seconds) until the guard has ended this Ray."""
        if not self.process.stdin.closed:
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)


@contextlib.contextmanager
def guarded(sessions: str) -> Iterator[Guard]:
    """`with guarded(ray_temp_dir) as guard: ctx = ray.init(...)`, then
    `guard.started(ctx.address_info["session_dir"])`. `sessions` is where Ray makes its session
    directories (used when the driver dies before it could say which one is its own). Keep `guard`
    as long as Ray runs: when it is closed or garbage collected, or the process ends, Ray is ended."""
    mark = f"{os.getpid()}-{secrets.token_hex(8)}"
    guard = Guard(mark, sessions)
    before = os.environ.get(MARK)
    os.environ[MARK] = mark
    try:
        yield guard
    except BaseException:
        guard.close()
        raise
    finally:
        if before is None:
            os.environ.pop(MARK, None)
        else:
            os.environ[MARK] = before


def end_ray(mark: str, session_dirs: list[str], driver_pid: int, grace: float = TERMINATE_GRACE) -> int:
    """End every process (but this one and the driver, which may still live) that has a file open in one of `session_dirs` or carries
    `mark`: SIGTERM, then SIGKILL for those still alive after `grace` seconds. Returns how many."""
    import psutil

    ended: set[int] = set()
    for _ in range(5):  # a process may start another while a pass runs
        found = [p for p in _processes_of(mark, session_dirs, {driver_pid}) if p.pid not in ended]
        if not found:
            break
        for p in found:
            with contextlib.suppress(psutil.Error):
                p.terminate()
        _, alive = psutil.wait_procs(found, timeout=grace)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(alive, timeout=grace)
        ended.update(p.pid for p in found)
    return len(ended)


def _processes_of(mark: str, session_dirs: list[str], spared: set[int]) -> list:
    import psutil

    needle = f"{MARK}={mark}".encode()
    prefixes = tuple(os.path.join(os.path.realpath(d), "") for d in session_dirs)
    spared = spared | {os.getpid()}
    out = []
    for p in psutil.process_iter():
        if p.pid in spared:
            continue
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            if needle in _environment_block(p).split(b"\0") or (prefixes and _holds_files_in(p, prefixes)):
                out.append(p)
        except psutil.Error:  # gone, or another user's process: not ours to end
            continue
    return out


def _environment_block(p) -> bytes:
    """The process's environment as its raw NUL-separated block; psutil's parser stops at the empty
    entries a retitled process leaves at the start of it."""
    if not os.path.isdir("/proc"):  # what psutil can read
        return b"\0".join(f"{k}={v}".encode() for k, v in p.environ().items())
    try:
        with open(f"/proc/{p.pid}/environ", "rb") as f:
            return f.read()
    except OSError:  # gone, a kernel thread, or another user's process
        return b""


def _holds_files_in(p, prefixes: tuple[str, ...]) -> bool:
    """Whether the process has a file open under one of `prefixes`."""
    return any(os.path.realpath(f.path).startswith(prefixes) for f in p.open_files())


def _sessions_of(driver_pid: int, sessions: str, since: float) -> list[str]:
    """Ray session directories a driver made (Ray names them after its pid) since `since`."""
    found = glob.glob(os.path.join(sessions, f"session_*_{driver_pid}"))
    return [d for d in found if os.path.getmtime(d) >= since - 1.0]


def _guard_main(mark: str, driver_pid: int, sessions: str) -> None:
    """The guard: wait until the driver closes the pipe (or dies), then end its Ray."""
    start = time.time()
    told = [line.strip() for line in sys.stdin.buffer.read().decode().splitlines() if line.strip()]
    end_ray(mark, told or _sessions_of(driver_pid, sessions, start), driver_pid)


if __name__ == "__main__":
    _guard_main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
