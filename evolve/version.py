"""evolve's distribution and its version. The import name is `evolve`; the distribution is
`evolve-programs`, since `evolve` on PyPI is an unrelated project. A plugin depends on it by that
name (`dependencies = ["evolve-programs"]`) and registers under the entry-point group `evolve`."""

from __future__ import annotations

import importlib.metadata

DISTRIBUTION = "evolve-programs"


def version() -> str:
    """The installed version, or "unknown" when evolve runs from sources that were never installed."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
