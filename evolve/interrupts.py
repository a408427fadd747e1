"""Ctrl-C and SIGTERM for the `evolve` command: one line and exit status 130, whenever they come.

The first signal raises KeyboardInterrupt where the command is, so a run stops cleanly, recorded as
interrupted and resumable. A second one, while the first is being cleaned up or the process ends,
ends the process at once with status 130: a run left so is taken over by `evolve resume` like one
that was killed, and nothing it committed is lost.

Python ignores an exception raised where nothing can catch it (a garbage-collector callback, which
JAX runs at every collection, a weakref callback, a `__del__` method): it prints "Exception ignored
in ..." and goes on. A KeyboardInterrupt lost so is delivered again a moment later, once that
callback has returned, and nothing is printed.

An interrupt that comes while a module is being imported is delivered the same way once the import
is over: a KeyboardInterrupt raised inside a native module's initialisation (jaxlib's, when JAX is
imported on the first evaluation) crashes the process with a segmentation fault. So is one that comes
while `Thread.start` waits for its thread to run: raised there, it leaves a thread running that its
caller cannot stop. JAX's first computation starts a 60-second `threading.Timer` (a warning that the
TPU backend is slow to start) and cancels it in a `finally` entered only after `start` returns; an
interrupt inside `start` left that timer to hold the ending process for a minute. For the window
between `start` returning and the caller's cleanup, `handled` also cancels any non-daemon Timer left
waiting: the process is ending, and nothing should run a minute after it was told to stop.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

EXIT_INTERRUPTED = 130
#: Seconds after which an interrupt that Python swallowed is delivered again.
REDELIVERY_DELAY = 0.02


class Interrupts:
    """A context for one command: `message` is printed once when it is interrupted.

    Handlers are set from the main thread only, and a signal the caller ignores (a background job's
    SIGINT) stays ignored. Once a signal has come the handlers stay (the process is ending);
    otherwise the caller's come back when the context exits."""

    def __init__(self, message: str = "evolve: interrupted"):
        self.message = message
        self.received = 0
        self._signal = signal.SIGINT
        self._redelivery = False
        self._reported = False
        self._previous: dict[int, object] = {}
        self._previous_hook = None

    def __enter__(self) -> "Interrupts":
        defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
        for signum, default in defaults.items():
            if signal.getsignal(signum) is default:
                try:
                    self._previous[signum] = signal.signal(signum, self._handle)
                except ValueError:  # not the main thread: signals are the caller's
                    return self
        if self._previous:
            self._previous_hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def __exit__(self, *exc_info) -> None:
        if self.received:
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if self._previous_hook is not None:
            sys.unraisablehook = self._previous_hook

    def report(self) -> None:
        """Print `message`, once."""
        if not self._reported:
            self._reported = True
            print(self.message, file=sys.stderr, flush=True)

    def handled(self) -> None:
        """The command caught the interrupt and returns: print `message`, cancel the timers left
        waiting (module docstring), and let the process exit with the status the command returns.
        (CPython remembers a KeyboardInterrupt that went through exec() of a string, as dataclasses
        and many imports do, and `python -m` then ends the process with SIGINT whatever status it
        returns; another exec() of a string forgets it.)"""
        self.report()
        _cancel_waiting_timers()
        exec("pass")

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._redelivery:
            self._redelivery = False
        else:
            self.received += 1
            self._signal = signum
        if self.received > 1:
            self._exit_now()
        if _importing(frame) or _starting_thread(frame):
            self._deliver_again()
            return
        raise KeyboardInterrupt

    def _unraisable(self, unraisable) -> None:
        """sys.unraisablehook: an interrupt Python swallowed is delivered again; the rest is printed
        as before."""
        if issubclass(unraisable.exc_type, KeyboardInterrupt) and self.received:
            self._deliver_again()
        else:
            self._previous_hook(unraisable)

    def _deliver_again(self) -> None:
        import threading

        main_thread = threading.main_thread().ident

        def again() -> None:  # a real signal, so that a blocking call in the main thread returns for it
            self._redelivery = True
            signal.pthread_kill(main_thread, self._signal)

        timer = threading.Timer(REDELIVERY_DELAY, again)
        timer.daemon = True
        timer.start()

    def _exit_now(self) -> None:
        import os

        self.report()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(EXIT_INTERRUPTED)


def _importing(frame: FrameType | None) -> bool:
    """Whether `frame` runs inside an import (importlib's frames are on its stack)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def _starting_thread(frame: FrameType | None) -> bool:
    """Whether `frame` runs inside `threading.Thread.start`, which waits for the thread it started."""
    import threading

    start = threading.Thread.start.__code__
    while frame is not None:
        if frame.f_code is start:
            return True
        frame = frame.f_back
    return False


def _cancel_waiting_timers() -> None:
    """Cancel the non-daemon `threading.Timer`s still waiting, which would keep the process alive."""
    import threading

    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer) and not thread.daemon:
            thread.cancel()
