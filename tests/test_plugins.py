"""Third-party plugins are found through the `evolve` entry-point group, exactly like the built-ins."""

import os
import subprocess
import sys

import pytest

from evolve.errors import OptionError, PluginError
from evolve.plugin_manager import PluginManager, SpaceSpec

TOY_SPACE = '''
"""A third-party search space: find f(x) = x*x + x with the compiled interpreter."""
import jax, jax.numpy as jnp, numpy as np
import evolve
from evolve.interpreter import Interpreter, bucket_size
from evolve.ops import Input, Vocabulary, elementwise_ops


class Parabola(evolve.SearchSpace):
    def __init__(self, points: int = 16):
        self._vocab = Vocabulary((Input("x", "real"),), ("real",), elementwise_ops(["add", "sub", "mul"], "real"), 12)
        self.interpreter = Interpreter(self._vocab)
        self.x = jnp.linspace(-2.0, 2.0, points)[None, :]
        self.run_batch = jax.jit(jax.vmap(self.interpreter.run, in_axes=(0, None)))

    @property
    def vocabulary(self):
        return self._vocab

    def evaluate(self, programs):
        lowered = self.interpreter.lower(programs, pad_to=bucket_size(len(programs)))
        pred = np.asarray(self.run_batch(lowered, self.x))[: len(programs), 0]
        x = np.asarray(self.x[0])
        err = np.mean((pred - (x * x + x)) ** 2, axis=1)
        return [evolve.Evaluation(float(-e), {"mse": float(e), "solved": bool(e < 1e-9)}) for e in err]


@evolve.hookimpl
def evolve_search_spaces():
    return {"parabola": Parabola}
'''


def install_fake_distribution(root, dist, module, source, entry_name):
    """A real installed distribution as pip leaves it: a module and a dist-info with an entry point."""
    (root / f"{module}.py").write_text(source)
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    info.joinpath("METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    info.joinpath("entry_points.txt").write_text(f"[evolve]\n{entry_name} = {module}\n")


@pytest.fixture
def plugin_path(tmp_path):
    install_fake_distribution(tmp_path, "evolve_parabola", "evolve_parabola", TOY_SPACE, "parabola")
    install_fake_distribution(tmp_path, "evolve_broken", "evolve_broken", "import not_a_module_anywhere\n", "broken")
    return tmp_path


def cli(args, plugin_path, db):
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    return subprocess.run([sys.executable, "-m", "evolve.cli", *args, "--db", db] if args[0] != "plugins" else
                          [sys.executable, "-m", "evolve.cli", *args], capture_output=True, text=True, env=env, timeout=300)


def test_third_party_space_is_listed_and_searched(plugin_path, tmp_path):
    db = str(tmp_path / "p.db")
    listing = cli(["plugins"], plugin_path, db)
    assert listing.returncode == 0, listing.stderr
    assert "parabola" in listing.stdout and "evolve_parabola 0.1" in listing.stdout
    # the broken plugin is reported with its error, and everything else still works
    assert "broken" in listing.stdout and "FAILED: ModuleNotFoundError" in listing.stdout
    assert "symbolic-regression" in listing.stdout and "regularized-evolution" in listing.stdout

    run = cli(["run", "parabola", "--budget", "3000", "--seed", "0", "--stop-when-solved"], plugin_path, db)
    assert run.returncode == 0, run.stderr
    assert "[solved]" in run.stdout
    assert "Traceback" not in run.stderr


def test_builtins_come_through_entry_points():
    manager = PluginManager()
    modules = {s.module for s in manager.sources if s.error is None}
    assert "evolve.search_spaces.symbolic_regression" in modules
    assert "evolve.plugins.regularized_evolution" in modules
    assert manager.provider("strategy", "regularized-evolution") == "regularized_evolution"


def test_unknown_names_and_options_are_clear():
    manager = PluginManager()
    with pytest.raises(PluginError, match="unknown search space 'nope'; installed: .*symbolic-regression"):
        manager.lookup("search space", "nope")
    space = manager.make_space(SpaceSpec("symbolic-regression"))
    with pytest.raises(OptionError, match="has no option 'popsize'; its options: population_size, tournament_size"):
        manager.make_strategy("regularized-evolution", space, {"popsize": 3})
    with pytest.raises(OptionError, match="tournament_size must be between 1 and population_size"):
        manager.make_strategy("regularized-evolution", space, {"population_size": 3, "tournament_size": 5})
