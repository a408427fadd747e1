"""evolve: evolutionary search for ML programs, guided by a learned binary discriminator."""

from evolve.errors import EvolveError
from evolve.hookspecs import hookimpl
from evolve.ops import Input, Op, Vocabulary
from evolve.program import Node, Program
from evolve.space import Evaluation, SearchSpace

__all__ = ["EvolveError", "Evaluation", "Input", "Node", "Op", "Program", "SearchSpace", "Vocabulary", "hookimpl"]
