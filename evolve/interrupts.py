"""Ctrl-C and SIGTERM for the `evolve` command: one line and exit status 130, whenever they come.

The first signal raises KeyboardInterrupt where the command is, so a run stops cleanly, recorded as
interrupted and resumable. A second one, while the first is being cleaned up or the process ends,
ends the process at once with status 130: a run left so is taken over by `evolve resume` like one
that was killed, and nothing it committed is lost.

Python ignores an exception raised inside a garbage-collector callback or a `__del__` method (it
prints "Exception ignored in ..." and goes on), and JAX runs a callback at every collection, so a
Ctrl-C that lands there would be lost with a traceback on the screen. Such a signal is delivered
again a moment later instead, once the callback has returned.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from types import FrameType

EXIT_INTERRUPTED = 130
#: Seconds after which a signal that landed where it could not be raised is delivered again.
REDELIVERY_DELAY = 0.02


class Interrupts:
    """A context for one command: `message` is printed once when it is interrupted.

    Handlers are set from the main thread only, and a signal the caller ignores (a background job's
    SIGINT) stays ignored. Once a signal has come the handlers stay (the process is ending);
    otherwise the caller's come back when the context exits."""

    def __init__(self, message: str = "evolve: interrupted"):
        self.message = message
        self.received = 0
        self._redelivery = False
        self._reported = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "Interrupts":
        defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
        for signum, default in defaults.items():
            if signal.getsignal(signum) is default:
                try:
                    self._previous[signum] = signal.signal(signum, self._handle)
                except ValueError:  # not the main thread: leave signals to the caller
                    return self
        return self

    def __exit__(self, *exc_info) -> None:
        if self.received:
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def report(self) -> None:
        """Print `message`, once."""
        if not self._reported:
            self._reported = True
            print(self.message, file=sys.stderr, flush=True)

    def handled(self) -> None:
        """The command caught the interrupt and returns: print `message`, and let the process exit
        with the status the command returns. (CPython remembers a KeyboardInterrupt that went
        through exec() of a string, as dataclasses and many imports do, and `python -m` then ends
        the process with SIGINT whatever status it returns; another exec() of a string forgets it.)"""
        self.report()
        exec("pass")

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._redelivery:
            self._redelivery = False
        else:
            self.received += 1
        if self.received > 1:
            self._exit_now()
        if _swallowed_in(frame):
            self._deliver_again(signum)
            return
        raise KeyboardInterrupt

    def _deliver_again(self, signum: int) -> None:
        import _thread
        import threading

        def again() -> None:
            self._redelivery = True
            _thread.interrupt_main(signum)

        timer = threading.Timer(REDELIVERY_DELAY, again)
        timer.daemon = True
        timer.start()

    def _exit_now(self) -> None:
        self.report()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(EXIT_INTERRUPTED)


def _swallowed_in(frame: FrameType | None) -> bool:
    """Whether an exception raised in `frame` would be printed and ignored by Python: the frame runs
    inside a garbage-collector callback or a `__del__` method."""
    callbacks = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    while frame is not None:
        if frame.f_code in callbacks or frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False
