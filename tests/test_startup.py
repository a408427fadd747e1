"""The commands a user runs to look around answer at once: `evolve --help`, `runs` and `plugins` import
none of the heavy libraries (JAX and its neural-network stack, Ray, sympy, networkx) nor the
discriminator's network. Each is checked in a fresh process, since this one has long imported them all.
"""

import json
import subprocess
import sys

import pytest

HEAVY = ("jax", "flax", "jraph", "optax", "ray", "sympy", "networkx")
NETWORK = ("evolve.discriminator.encoding", "evolve.discriminator.model", "evolve.discriminator.training")

#: runs the CLI in-process, then prints its output, its exit code and the heavy modules it imported
PROBE = """
import contextlib, io, json, sys
import evolve.cli as cli
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = cli.main(json.loads(sys.argv[1]))
    except SystemExit as e:
        code = e.code
print(json.dumps({"code": code, "out": out.getvalue(), "imported": [m for m in json.loads(sys.argv[2]) if m in sys.modules]}))
"""


def cli_in_fresh_process(args: list[str], cwd) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args), json.dumps([*HEAVY, *NETWORK])],
                          capture_output=True, text=True, cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def store_with_a_run(tmp_path_factory) -> str:
    """A store holding one finished run (a few instant evaluations of the sleep space)."""
    db = str(tmp_path_factory.mktemp("startup") / "evolve.db")
    subprocess.run([sys.executable, "-m", "evolve.cli", "run", "sleep", "--budget", "4", "--workers", "2",
                    "--space-opt", "seconds=0", "--db", db], check=True, capture_output=True, timeout=120)
    return db


def test_help_imports_nothing_heavy(tmp_path):
    result = cli_in_fresh_process(["--help"], tmp_path)
    assert result["code"] == 0 and "evolve" in result["out"] and "plugins" in result["out"]
    assert result["imported"] == []


def test_runs_imports_nothing_heavy(store_with_a_run, tmp_path):
    result = cli_in_fresh_process(["runs", "--db", store_with_a_run], tmp_path)
    assert result["code"] == 0
    assert any(line.split()[:1] == ["1"] and "sleep" in line for line in result["out"].splitlines())
    assert result["imported"] == []


def test_plugins_loads_every_builtin_without_anything_heavy(tmp_path):
    result = cli_in_fresh_process(["plugins"], tmp_path)
    assert result["code"] == 0
    listing = result["out"]
    assert "FAILED" not in listing  # light because every plugin loaded, not because one failed to
    for name in ("binary", "regression", "oracle", "pam-rt", "predictor-filter", "optimizers", "ray"):
        assert f"  {name} " in listing
    assert result["imported"] == []
