"""Lifecycle hooks delivered to reporters, each isolated from the run and from the others.

A reporter (progress bar, logger, dashboard) must never end a run: an exception in one is reported
in one warning line, that reporter is disabled for the rest of the run, and the run goes on.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("evolve.reporters")


class Lifecycle:
    """Calls one lifecycle hook's implementations one by one (see evolve/hookspecs.py)."""

    def __init__(self, pluggy_manager):
        self._pm = pluggy_manager
        self.disabled: dict[str, str] = {}  # plugin name -> why it was disabled

    def notify(self, hook: str, **kwargs: Any) -> None:
        for impl in getattr(self._pm.hook, hook).get_hookimpls():
            if impl.plugin_name in self.disabled:
                continue
            try:
                impl.function(*(kwargs[name] for name in impl.argnames))
            except Exception as e:  # noqa: BLE001 - a reporter's bug must not end the run
                reason = f"{type(e).__name__}: {e}"
                self.disabled[impl.plugin_name] = reason
                log.warning("reporter %r raised in %s (%s); it is disabled for the rest of this run", impl.plugin_name, hook, reason)
