"""The Ray executor: evaluations on a pool of Ray actors, on this machine or a cluster.

Each actor builds the search space once from the SpaceSpec (so a JAX space compiles once per actor)
and evaluates the programs sent to it; programs travel as JSON, results come back as plain dicts, so
nothing but data crosses processes. Results are handed to the engine as they complete (ray.wait).

With fewer actors than evaluations in flight, an idle actor takes a share of the waiting items as one
batch, which a vectorised space evaluates in one call. Failures are results, and the search goes on:

* an actor whose process dies is replaced and its items are sent again, up to `max_retries` times
  each, then recorded as failed with the reason;
* a call that runs past its time limit (`timeout_s` per program) has its actor killed and replaced,
  and its program recorded as a timeout. A batch that times out or dies is split into single programs
  first, so the culprit is found and its neighbours are not blamed.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import os
import socket
import sys
import time
from typing import Any, Sequence

from evolve.errors import ClusterError
from evolve.executors import Executor, WorkItem, WorkResult, evaluate_safely
from evolve.hookspecs import hookimpl
from evolve.plugin_manager import SpaceSpec
from evolve.program import Program
from evolve.ray_reaper import Guard, guarded
from evolve.space import Evaluation

log = logging.getLogger(__name__)

#: The guard of the Ray this process started, if it started one (Ray's connection is itself one per
#: process): it ends that Ray's processes when this process lets go of Ray or dies (ray_reaper.py).
_started_ray: Guard | None = None


# ---------------------------------------------------------------------------------------- connecting


def connect(address: str | None = None, quiet: bool = True) -> bool:
    """Join the Ray cluster at `address` ("auto", "HOST:PORT", "ray://HOST:10001"), or start Ray on this
    machine when None. Returns True when this call started or joined Ray (and so should shut it down).
    Ray started here ends with this process, however it ends (kill -9 included; see ray_reaper.py).

    Call it before JAX starts its backend in this process: Ray forks helper processes, and forking a
    process that runs JAX's threads can deadlock (JAX warns about it)."""
    if address is not None and "RAY_AUTH_MODE" not in os.environ and _token_available():
        _use_token_auth()  # as a cluster started with `ray start` does when there is a token
    import ray

    if ray.is_initialized():
        return False
    quiet_kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False} if quiet else {}
    if address is None:
        # A new local instance (with a token, made if missing), never someone else's cluster that
        # happens to run on this machine; its processes end with this one, even on kill -9.
        from ray._common.utils import get_default_ray_temp_dir

        global _started_ray
        with guarded(get_default_ray_temp_dir()) as guard:
            context = ray.init(address="local", include_dashboard=False, **quiet_kwargs)
            guard.started(context.address_info["session_dir"])
        _started_ray = guard
        return True
    _check_reachable(address)
    try:
        ray.init(address=address, **quiet_kwargs)
    except (ConnectionError, RuntimeError) as e:
        raise ClusterError(f"cannot join the Ray cluster at {address}: {e}") from None
    return True


def disconnect() -> None:
    """Leave Ray; if this process started it, wait until its processes are gone."""
    import ray

    global _started_ray
    ray.shutdown()
    if _started_ray is not None:
        _started_ray.close()
        _started_ray = None


def _check_reachable(address: str) -> None:
    """Fail in seconds with one clear line, where Ray itself would wait for a minute and then print a
    page of warnings."""
    from ray._private.services import canonicalize_bootstrap_address

    target = address.removeprefix("ray://")
    if address == "auto":
        try:
            target = canonicalize_bootstrap_address("auto")
        except ConnectionError:  # what newer Ray raises instead of returning None
            target = None
        if target is None:
            raise ClusterError("--address auto: no Ray cluster is running on this machine (start one with `ray start --head`)")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None


def _use_token_auth() -> None:
    """Ray reads RAY_AUTH_MODE when it is imported; if it already was, it re-reads it the way Ray's own
    `_enable_token_auth` does."""
    os.environ["RAY_AUTH_MODE"] = "token"
    if "ray" in sys.modules:
        from ray._raylet import Config

        Config.initialize("")


def _token_available() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    return os.path.exists(path)


# ---------------------------------------------------------------------------------------- the actor


class _Worker:
    """One actor process: builds the space and its evaluator once, then evaluates what it is sent."""

    def __init__(self, spec: SpaceSpec):
        self.evaluator = spec.build().evaluator

    def ready(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def evaluate(self, programs: list[str]) -> tuple[list[dict[str, Any]], float]:
        """(evaluations as dicts, seconds spent)"""
        start = time.perf_counter()
        evaluations = evaluate_safely(self.evaluator, [Program.from_json(p) for p in programs])
        return [dataclasses.asdict(e) for e in evaluations], time.perf_counter() - start


# ---------------------------------------------------------------------------------------- the pool


@dataclasses.dataclass
class _Item:
    work: WorkItem
    json: str
    tries: int = 0
    alone: bool = False  # sent in a call of its own: it was in a batch that died or timed out


@dataclasses.dataclass
class _Call:
    actor: Any
    items: list[_Item]
    deadline: float


class RayExecutor(Executor):
    """Constructed as `RayExecutor(space_spec, workers=W, **options)` (`--executor-opt k=v`)."""

    completes_out_of_order = True

    def __init__(
        self,
        space_spec: SpaceSpec,
        workers: int = 16,
        address: str | None = None,
        actors: int | None = None,
        cpus_per_actor: float = 1.0,
        max_retries: int = 2,
        timeout_s: float | None = None,
        start_timeout_s: float = 300.0,
        quiet: bool = True,
    ):
        """workers: programs in flight at once across the cluster.
        address: the cluster to join ("auto", "HOST:PORT", "ray://HOST:10001"); None starts Ray here.
        actors: actor processes (default: one per CPU of the cluster, at most `workers`).
        cpus_per_actor: CPUs Ray reserves for each actor; 0 for evaluations that wait on something else.
        max_retries: how often a program whose worker died is sent again before it is recorded as failed.
        timeout_s: the time limit of one evaluation (None: no limit).
        start_timeout_s: how long the first actors may take to start before the run gives up.
        quiet: keep Ray's own log lines (startup banner, worker output) off the terminal."""
        import ray

        if workers < 1:
            raise ValueError("workers must be at least 1")
        if max_retries < 0 or cpus_per_actor < 0 or (timeout_s is not None and timeout_s <= 0):
            raise ValueError("max_retries and cpus_per_actor must be at least 0, timeout_s above 0")
        self._owns_ray = connect(address, quiet)
        self.spec = space_spec.remote()  # name, options and class: never the driver's instance
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self._remote = ray.remote(_Worker).options(num_cpus=cpus_per_actor, max_restarts=0, max_concurrency=1)
        self.size = actors if actors is not None else _default_actors(workers, cpus_per_actor)
        if self.size < 1:
            raise ValueError("actors must be at least 1")
        self._queue: collections.deque[_Item] = collections.deque()
        self._idle: list[Any] = []
        self._starting: dict[Any, Any] = {}  # ready() ref -> actor
        self._running: dict[Any, _Call] = {}  # evaluate() ref -> call
        self.nodes: set[str] = set()  # ids of the Ray nodes actors have run on
        for _ in range(self.size):
            self._start_actor()
        self._await_first_actors(start_timeout_s, cpus_per_actor)

    # ------------------------------------------------------------------ the Executor contract
    def submit(self, items: Sequence[WorkItem]) -> None:
        self._queue.extend(_Item(item, item.program.to_json()) for item in items)
        self._dispatch()

    def results(self) -> list[WorkResult]:
        import ray

        out: list[WorkResult] = []
        while not out and (self._queue or self._running):
            refs = list(self._running) + list(self._starting)
            ready, _ = ray.wait(refs, num_returns=1, timeout=self._until_next_deadline())
            if ready:
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            for ref in ready:
                if ref in self._starting:
                    self._actor_started(ref)
                else:
                    out.extend(self._finish(ref))
            out.extend(self._expire())
            self._dispatch()
        return out

    def shutdown(self) -> None:
        import ray

        for actor in [*self._idle, *self._starting.values(), *(c.actor for c in self._running.values())]:
            ray.kill(actor)
        self._idle, self._starting, self._running = [], {}, {}
        if self._owns_ray and ray.is_initialized():
            disconnect()

    # ------------------------------------------------------------------ actors
    def _start_actor(self) -> None:
        actor = self._remote.remote(self.spec)
        self._starting[actor.ready.remote()] = actor

    def _actor_started(self, ref) -> None:
        import ray

        actor = self._starting.pop(ref)
        try:
            self.nodes.add(ray.get(ref))
        except ray.exceptions.RayActorError as e:
            raise ClusterError(f"a Ray worker could not build search space {self.spec.name!r}: {_cause(e)}") from None
        self._idle.append(actor)

    def _await_first_actors(self, timeout: float, cpus_per_actor: float) -> None:
        """Block until every actor has built its space, so that a space that cannot be built on the
        workers, or a cluster too small for the actors, fails now with one clear message."""
        import ray

        ready, _ = ray.wait(list(self._starting), num_returns=len(self._starting), timeout=timeout)
        for ref in ready:
            self._actor_started(ref)
        log.info("%d Ray actors on %d nodes", len(self._idle), len(self.nodes))
        if self._starting:
            self.shutdown()
            raise ClusterError(
                f"only {self.size - len(self._starting)} of {self.size} Ray actors started within {timeout:g} s;"
                f" each needs {cpus_per_actor:g} CPUs and the cluster has {ray.cluster_resources().get('CPU', 0):g}"
                " (lower --executor-opt actors or cpus_per_actor)"
            )

    def _replace(self, actor) -> None:
        import ray

        ray.kill(actor)
        self._start_actor()

    # ------------------------------------------------------------------ calls
    def _dispatch(self) -> None:
        """Give each idle actor an even share of the waiting items, as one call."""
        while self._queue and self._idle:
            actor = self._idle.pop()
            share = math.ceil(len(self._queue) / (len(self._idle) + 1))
            items = [self._queue.popleft()]
            while not items[0].alone and len(items) < share and self._queue and not self._queue[0].alone:
                items.append(self._queue.popleft())
            limit = math.inf if self.timeout_s is None else time.monotonic() + self.timeout_s * len(items)
            for item in items:
                item.tries += 1
            self._running[actor.evaluate.remote([i.json for i in items])] = _Call(actor, items, limit)

    def _finish(self, ref) -> list[WorkResult]:
        import ray

        call = self._running.pop(ref)
        try:
            evaluations, seconds = ray.get(ref)
        except ray.exceptions.RayActorError as e:
            self._replace(call.actor)
            return self._retry_or_fail(call.items, f"worker died ({_cause(e)})")
        except ray.exceptions.RayError as e:
            self._idle.append(call.actor)
            return [WorkResult(i.work.ticket, Evaluation.failure(f"worker error: {_cause(e)}"), 0.0) for i in call.items]
        self._idle.append(call.actor)
        share = seconds / len(call.items)
        return [WorkResult(i.work.ticket, Evaluation(**e), share) for i, e in zip(call.items, evaluations)]

    def _retry_or_fail(self, items: list[_Item], reason: str) -> list[WorkResult]:
        """Send items again (a batch one program at a time), except those out of tries."""
        failed = []
        for item in items:
            if len(items) > 1 or item.tries <= self.max_retries:
                if len(items) > 1:
                    item.tries -= 1  # a shared death is not charged to each program of the batch
                    item.alone = True
                self._queue.appendleft(item)
            else:
                failed.append(WorkResult(item.work.ticket, Evaluation.failure(f"{reason} after {item.tries} tries"), 0.0))
        return failed

    def _expire(self) -> list[WorkResult]:
        """Kill and replace the actors of calls past their deadline."""
        now = time.monotonic()
        out = []
        for ref, call in list(self._running.items()):
            if call.deadline > now:
                continue
            del self._running[ref]
            self._replace(call.actor)
            if len(call.items) > 1:
                for item in call.items:
                    item.tries -= 1
                    item.alone = True
                    self._queue.appendleft(item)
            else:
                failure = Evaluation.failure(f"timeout after {self.timeout_s:g} s")
                out.append(WorkResult(call.items[0].work.ticket, failure, self.timeout_s))
        return out

    def _until_next_deadline(self) -> float | None:
        deadlines = [c.deadline for c in self._running.values() if c.deadline < math.inf]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None


def _default_actors(workers: int, cpus_per_actor: float) -> int:
    import ray

    if cpus_per_actor == 0:
        return workers
    return max(1, min(workers, int(ray.cluster_resources().get("CPU", 1) // cpus_per_actor)))


def _cause(error: Exception) -> str:
    """The first line of a Ray error, which is long."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


@hookimpl
def evolve_executors():
    return {"ray": RayExecutor}
