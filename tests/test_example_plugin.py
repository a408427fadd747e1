"""The example plugin package (examples/evolve-plugin-example) works the way its author would use it:
built and installed by pip from its own pyproject.toml, found by `evolve plugins` through its entry
points, searched through the CLI with its reporter logging every individual, and passing its own
contract test."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evolve.program import Program
from evolve.store import Store

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "evolve-plugin-example"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the package's sources, the folder pip installed it into). The sources are a copy: a build
    writes build/ and *.egg-info next to them."""
    root = tmp_path_factory.mktemp("example")
    source, site = root / "source", root / "site"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert pip.returncode == 0, (
        "pip could not build the example; without build isolation it needs setuptools>=77 in this"
        f" environment (pip install -e '.[test]'):\n{pip.stderr[-3000:]}"
    )
    return source, site


def run(args, site, cwd=None, **env):
    path = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": path, **env})


def test_evolve_plugins_lists_the_example(installed):
    _, site = installed
    listing = run(["-m", "evolve.cli", "plugins"], site)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert any(line.split()[:2] == ["boolean-circuits", "evolve_plugin_example.circuits.BooleanCircuits"] for line in lines)
    reporters = lines[lines.index("reporters (lifecycle hooks):") + 1 : lines.index("plugin modules:")]
    assert "jsonl_log" in [line.strip() for line in reporters]
    for entry, module in [("boolean_circuits", "evolve_plugin_example.circuits"), ("jsonl_log", "evolve_plugin_example.jsonl_log")]:
        assert any(line.split() == [entry, module, "evolve-plugin-example", "0.1.0", "ok"] for line in lines), listing.stdout


def test_a_search_in_the_example_space_solves_and_is_logged(installed, tmp_path):
    _, site = installed
    db, log = tmp_path / "circuits.db", tmp_path / "circuits.jsonl"
    search = run(["-m", "evolve.cli", "run", "boolean-circuits", "--budget", "2000", "--seed", "0",
                  "--stop-when-solved", "--db", str(db)], site, EVOLVE_EXAMPLE_LOG=str(log))
    assert search.returncode == 0, search.stderr
    assert "finished (solved)" in search.stdout and "fitness 1 [solved]" in search.stdout, search.stdout
    assert "Traceback" not in search.stderr

    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert events[0] == {"event": "started", "run": 1, "space": "boolean-circuits", "resumed": False, "evaluated": 0}
    assert events[-1] == {"event": "finished", "run": 1, "reason": "solved"}
    logged = events[1:-1]
    recorded = Store(str(db)).individuals(1)
    # every recorded individual, once, in the order recorded, as the store has it
    assert [e["id"] for e in logged] == [ind.id for ind in recorded] == list(range(1, len(recorded) + 1))
    assert [e["fitness"] for e in logged] == [ind.fitness for ind in recorded]
    assert [Program.from_dict(e["program"]) for e in logged] == [ind.program for ind in recorded]
    fitness = [e["fitness"] for e in logged]
    assert max(fitness[:10]) < 1.0 and max(fitness) == 1.0  # it improved to a solution


def test_the_example_passes_its_own_contract_test(installed):
    source, site = installed
    tests = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests")], site, cwd=source.parent)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and "failed" not in tests.stdout
