"""evolve: evolutionary search for ML programs, guided by a learned binary discriminator.

The public names are imported on first use (PEP 562): every `import evolve.<module>` runs this file
first, and `evolve --help` must not pay for the program machinery it never touches.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "EvolveError": "evolve.errors",
    "Evaluation": "evolve.space",
    "Evaluator": "evolve.space",
    "Input": "evolve.ops",
    "Node": "evolve.program",
    "Op": "evolve.ops",
    "Program": "evolve.program",
    "SearchSpace": "evolve.space",
    "ValueType": "evolve.ops",
    "Vocabulary": "evolve.ops",
    "hookimpl": "evolve.hookspecs",
    # the Python API (README "Python API"): stored runs and new searches
    "open": "evolve.api",
    "search": "evolve.api",
    "resume": "evolve.api",
    "Run": "evolve.api",
    "Runs": "evolve.api",
    "FoundProgram": "evolve.api",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name == "__version__":
        from evolve.version import version

        return version()
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'evolve' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
