"""One exception family for everything a user can cause.

The CLI turns any `EvolveError` into one clear line and a non-zero exit; anything else is a bug and
keeps its traceback.
"""


class EvolveError(Exception):
    """Base of every error a user can cause (bad input, unknown names, missing runs)."""


class ProgramError(EvolveError):
    """A program is malformed: bad JSON, a broken type rule, a dangling reference."""


class MutationError(EvolveError):
    """No valid, different child could be made within the allowed number of tries."""


class PluginError(EvolveError):
    """An unknown plugin name, or a plugin that failed to load."""


class OptionError(EvolveError):
    """An option a plugin does not accept, or a value it cannot use."""


class StoreError(EvolveError):
    """A run that does not exist, or a store that cannot be opened."""


class ClusterError(EvolveError):
    """A Ray cluster that cannot be reached or joined, or that cannot start the workers asked for."""
