"""The plugin manager: built-ins and third-party plugins, found the same way.

Every module registered under the entry-point group `evolve` is loaded and registered with pluggy. A
plugin that fails to import is recorded with its error and the rest keeps working; `evolve plugins`
shows both.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import inspect
import logging
import types
import typing
from typing import Any

import pluggy

from evolve import hookspecs
from evolve.errors import OptionError, PluginError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "evolve"
KINDS = {
    "search space": "evolve_search_spaces",
    "strategy": "evolve_strategies",
    "predictor": "evolve_predictors",
    "executor": "evolve_executors",
}
LIFECYCLE_HOOKS = ("evolve_run_started", "evolve_individual_evaluated", "evolve_run_finished")


@dataclasses.dataclass(frozen=True)
class PluginSource:
    """Where a plugin module came from: its entry point and distribution, or why it failed."""

    name: str
    module: str
    distribution: str
    version: str
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class SpaceSpec:
    """A search space by name and options: enough for any process to build its own copy.

    space_class: the class the driver's plugin manager resolved `name` to. It travels with the spec
    (by reference, as an importable class), so a worker builds exactly the space the driver meant,
    even one registered in code (`PluginManager(extra_plugins=...)`) rather than by entry point.
    local: the driver's own instance, for an executor that evaluates in the driver's process; it is
    never sent anywhere.
    """

    name: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    space_class: type | None = dataclasses.field(default=None, compare=False)
    local: Any = dataclasses.field(default=None, compare=False, repr=False)

    def build(self):
        """The space: the local instance when there is one, else a new one of `space_class` (looked up
        through the entry points when the spec names none)."""
        if self.local is not None:
            return self.local
        cls = self.space_class or PluginManager().lookup("search space", self.name)
        return instantiate_space(cls, self.name, self.options)

    def remote(self) -> "SpaceSpec":
        """The spec to send to another process: name, options and class, no instance."""
        return dataclasses.replace(self, local=None)


class PluginManager:
    def __init__(self, extra_plugins: tuple[Any, ...] = ()):
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.sources: list[PluginSource] = []
        self._provider: dict[tuple[str, str], str] = {}
        self._broken: dict[str, str] = {}  # plugin name -> why its registration hook failed
        described: dict[int, tuple[str, str]] = {}  # id(distribution) -> (name, version): its metadata read once
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.dist is None:
                dist, version = "?", "?"
            else:
                if id(ep.dist) not in described:
                    metadata = ep.dist.metadata
                    described[id(ep.dist)] = (metadata["Name"], metadata["Version"])
                dist, version = described[id(ep.dist)]
            try:
                module = ep.load()
                if self.pm.is_registered(module):
                    continue  # the same module reached through a second installed copy
                self.pm.register(module, name=ep.name)
                self.sources.append(PluginSource(ep.name, ep.value, dist, version))
            except Exception as e:  # a broken third-party plugin must not take the others down
                log.warning("plugin %r from %s failed to load: %s: %s", ep.name, dist, type(e).__name__, e)
                self.sources.append(PluginSource(ep.name, ep.value, dist, version, f"{type(e).__name__}: {e}"))
        for plugin in extra_plugins:
            self.pm.register(plugin)
            self.sources.append(PluginSource(getattr(plugin, "__name__", repr(plugin)), "(registered in code)", "-", "-"))

    @property
    def hook(self):
        return self.pm.hook

    def registry(self, kind: str) -> dict[str, type]:
        """`{name: class}` of everything registered of one kind (see KINDS)."""
        hook = getattr(self.pm.hook, KINDS[kind])
        merged: dict[str, type] = {}
        for impl in hook.get_hookimpls():
            registered = self._registered(kind, impl)
            for name, cls in registered.items():
                if name in merged and merged[name] is not cls:
                    log.warning("%s %r is registered twice; using the one from %s", kind, name, impl.plugin_name)
                merged[name] = cls
                self._provider[(kind, name)] = impl.plugin_name
        return merged

    def _registered(self, kind: str, impl) -> dict[str, type]:
        """What one plugin's registration hook returns; a hook that raises or returns something else
        than {name: class} marks that plugin broken (one warning, `evolve plugins` shows why) and the
        others keep working."""
        try:
            registered = impl.function() or {}
            if not isinstance(registered, dict) or not all(isinstance(k, str) and isinstance(v, type) for k, v in registered.items()):
                raise TypeError(f"{KINDS[kind]}() must return {{name: class}}, got {registered!r:.80}")
            return registered
        except Exception as e:  # noqa: BLE001 - a broken plugin must not take the others down
            error = f"{type(e).__name__}: {e}"
            if impl.plugin_name not in self._broken:
                self._broken[impl.plugin_name] = error
                log.warning("plugin %r: %s", impl.plugin_name, error)
                self.sources = [dataclasses.replace(src, error=src.error or error) if src.name == impl.plugin_name else src
                                for src in self.sources]
            return {}

    def reporters(self) -> list[str]:
        """Names of the plugins that implement lifecycle hooks."""
        names = {impl.plugin_name for hook in LIFECYCLE_HOOKS for impl in getattr(self.pm.hook, hook).get_hookimpls()}
        return sorted(names)

    def provider(self, kind: str, name: str) -> str:
        self.registry(kind)
        return self._provider[(kind, name)]

    def lookup(self, kind: str, name: str) -> type:
        registry = self.registry(kind)
        if name not in registry:
            known = ", ".join(sorted(registry)) or "none"
            raise PluginError(f"unknown {kind} {name!r}; installed: {known}")
        return registry[name]

    # ------------------------------------------------------------------ construction
    def make_space(self, spec: SpaceSpec):
        """A new instance of the space named by `spec` (its grammar; the evaluator is built only
        where evaluations run)."""
        return instantiate_space(self.lookup("search space", spec.name), spec.name, spec.options)

    def space_spec(self, name: str, options: dict[str, Any] | None = None, local: Any = None) -> SpaceSpec:
        """A SpaceSpec with the class this manager resolves `name` to."""
        return SpaceSpec(name, dict(options or {}), self.lookup("search space", name), local)

    def make_strategy(self, name: str, space, options: dict[str, Any]):
        return construct(self.lookup("strategy", name), options, f"strategy {name!r}", space)

    def make_predictor(self, name: str, space, options: dict[str, Any]):
        return construct(self.lookup("predictor", name), options, f"predictor {name!r}", space)

    def make_executor(self, name: str, spec: SpaceSpec, workers: int, options: dict[str, Any]):
        return construct(self.lookup("executor", name), {"workers": workers, **options}, f"executor {name!r}", spec)


def instantiate_space(cls: type, name: str, options: dict[str, Any]):
    """`cls(**options)` with its options checked, named `name`. A node limit that leaves no room
    for a node after the inputs (e.g. max_nodes=0) is refused here for every space, before a random
    program or a mutation fails on it in the middle of a run."""
    space = construct(cls, options, f"search space {name!r}")
    space.name = name
    vocab = getattr(space, "vocabulary", None)
    n_inputs = len(getattr(vocab, "inputs", ()))
    if isinstance(getattr(vocab, "max_nodes", None), int) and vocab.max_nodes <= n_inputs:
        raise OptionError(f"search space {name!r}: max_nodes must be at least {n_inputs + 1} (its {n_inputs} inputs"
                          f" and one node to compute with), got {vocab.max_nodes}")
    return space


_SIMPLE_TYPES = {int: (int,), float: (int, float), bool: (bool,), str: (str,)}


def _check_types(cls: type, options: dict[str, Any], what: str) -> None:
    """Options arrive from the command line as JSON values: check them against the constructor's
    annotations where those are plain int/float/bool/str (or Optional of them)."""
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations: the constructor will complain itself
        return
    for key, value in options.items():
        hint = hints.get(key)
        if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None, X | Y
            allowed = set(typing.get_args(hint))
        else:
            allowed = {hint}
        if value is None and type(None) in allowed:
            continue
        allowed.discard(type(None))
        if allowed and allowed <= set(_SIMPLE_TYPES):
            ok = any(isinstance(value, _SIMPLE_TYPES[t]) and not (t is not bool and isinstance(value, bool)) for t in allowed)
            if not ok:
                names = " or ".join(sorted(t.__name__ for t in allowed))
                raise OptionError(f"{what}: option {key!r} must be {names}, got {value!r}")


def construct(cls: type, options: dict[str, Any], what: str, *args: Any):
    """`cls(*args, **options)`, with unknown options and rejected values turned into OptionError."""
    params = inspect.signature(cls).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    allowed = [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)][len(args):]
    unknown = [k for k in options if k not in allowed]
    if unknown and not accepts_any:
        raise OptionError(f"{what} has no option {unknown[0]!r}; its options: {', '.join(allowed) or 'none'}")
    _check_types(cls, options, what)
    try:
        return cls(*args, **options)
    except (ValueError, TypeError) as e:
        raise OptionError(f"{what}: {e}") from None


_REMOVED = {
    "default_manager": "build a PluginManager() where you need one (there is no process-wide manager any more)",
    "build_space": "call SpaceSpec.build(), or PluginManager().make_space(spec) (spaces are no longer cached per process)",
}


def __getattr__(name: str):
    """Names a plugin written for evolve 0.1 may import: one clear line on how to update."""
    if name in _REMOVED:
        raise ImportError(f"evolve.plugin_manager.{name} was removed in evolve 0.2: {_REMOVED[name]}; "
                          "see README 'Upgrading plugins'")
    raise AttributeError(f"module 'evolve.plugin_manager' has no attribute {name!r}")
