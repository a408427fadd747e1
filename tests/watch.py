"""Watching a search that runs in another process, through its store."""

import contextlib
import sqlite3
import subprocess
import time


def recorded(db: str) -> int:
    """Individuals recorded so far (0 while the store does not exist yet)."""
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as c:  # a connection left open holds locks
            return c.execute("SELECT COUNT(*) FROM individuals").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def wait_until_recorded(proc: subprocess.Popen, db: str, n: int, timeout: float = 120) -> None:
    """Return once `n` individuals are recorded, the process ended, or `timeout` seconds passed."""
    deadline = time.time() + timeout
    while recorded(db) < n and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
