"""Fuzzing (hypothesis) of what a user hands evolve: program files, options and command lines.

Whatever comes in, the outcome is a result or one clear error, never a traceback:
* program JSON (a space's own programs, whole or broken in one place; the schema's fields each right
  or wrong; any JSON value; then maybe cut short, spliced with junk, nested thousands deep or not
  UTF-8) either reads as a Program or raises ProgramError; a program that reads either validates in
  a space or raises ProgramError; a valid one round-trips through JSON, is described, and is
  evaluated into one Evaluation (by the real evaluator of symbolic regression, compiled once);
* `--space-opt` / `--strategy-opt` texts, read by the CLI's parser of them, build the space or the
  strategy or raise one EvolveError, for every option of the built-in spaces and strategies;
* command lines drawn from the CLI's own commands and flags, with values of every type (numbers of
  thousands of digits, NaN, negative and huge values, junk text, control characters, paths that are
  missing, directories or other programs' files) end with status 0, or 2 and exactly one line
  "evolve: error: ..." on stderr; `main` raises nothing else; so do fuzzed files given to
  `evolve evaluate`.

The CI run makes 10,000 cases (6,500 program files + 2,000 option sets + 1,200 command lines + 300
files to `evolve evaluate`; about 50 s on two cores); EVOLVE_FUZZ_SCALE=k multiplies every count.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import sqlite3
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evolve.cli import main
from evolve.errors import EvolveError, ProgramError
from evolve.executors import evaluate_safely
from evolve.plugin_manager import PluginManager, SpaceSpec
from evolve.program import FORMAT, VERSION, Program
from evolve.space import Evaluation

pytestmark = pytest.mark.slow  # 10,000 cases: about a minute

SCALE = float(os.environ.get("EVOLVE_FUZZ_SCALE", "1"))
PROGRAM_CASES = int(6_500 * SCALE)
OPTION_CASES = int(2_000 * SCALE)
CLI_CASES = int(1_200 * SCALE)
EVALUATE_CASES = int(300 * SCALE)
assert PROGRAM_CASES + OPTION_CASES + CLI_CASES + EVALUATE_CASES >= 10_000 or SCALE < 1


def fuzz_settings(examples: int) -> settings:
    # derandomized: CI runs the same cases every time; no example database is written to the tree
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck))


# ---------------------------------------------------------------------------- program JSON

SPACE_NAMES = ("symbolic-regression", "sleep")
OP_NAMES = ("input", "const", "add", "sub", "mul", "div", "sin", "cos", "exp", "log", "tan", "")

numbers = st.one_of(
    st.integers(min_value=-3, max_value=40),
    st.floats(),
    st.integers(),
    st.integers(min_value=-3, max_value=40),
    st.floats(),
    st.booleans(),
    st.integers(min_value=10**300, max_value=10**420),  # too large for a float, or for Python to parse
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=4,
)


def right_or_wrong(right):
    """Mostly what the schema asks for, sometimes any JSON value."""
    return st.one_of(right, right, right, json_values)


schema_nodes = right_or_wrong(st.fixed_dictionaries(
    {"op": right_or_wrong(st.sampled_from(OP_NAMES))},
    optional={"inputs": right_or_wrong(st.lists(st.integers(min_value=-2, max_value=12), max_size=3)),
              "value": numbers, "type": right_or_wrong(st.sampled_from(["real", "vector"])),
              "unordered": right_or_wrong(st.booleans())},
))


@functools.lru_cache(maxsize=None)
def grammar(name: str):
    options = {"problem": "nguyen-1"} if name == "symbolic-regression" else {"seconds": 0.0}
    return PluginManager().make_space(SpaceSpec(name, options))


def random_program(name: str, seed: int) -> dict:
    """A valid program of the space, as a document."""
    return grammar(name).random_program(np.random.default_rng(seed)).to_dict()


#: Values of the right type for each field, which reading accepts and validation must judge.
PLAUSIBLE = {
    "op": st.sampled_from(OP_NAMES), "inputs": st.lists(st.integers(min_value=-2, max_value=12), max_size=3),
    "value": numbers, "type": st.sampled_from(["real", "vector"]), "unordered": st.booleans(),
    "format": st.just(FORMAT), "version": st.integers(0, 2), "space": st.sampled_from(SPACE_NAMES),
    "nodes": st.lists(schema_nodes, max_size=4), "outputs": st.lists(st.integers(min_value=-1, max_value=12), max_size=2),
}


@st.composite
def broken(draw, document: dict) -> dict:
    """The document with one field, or one node's field, changed (to a plausible value, or any JSON
    value) or removed."""
    document = json.loads(json.dumps(document))
    target = document
    if document["nodes"] and draw(st.sampled_from([True, True, False])):
        target = document["nodes"][draw(st.integers(0, len(document["nodes"]) - 1))]
    key = draw(st.sampled_from(sorted({*target, "value", "inputs"} if target is not document else target)))
    change = draw(st.sampled_from(["plausible", "plausible", "any", "remove"]))
    if change == "remove":
        target.pop(key, None)
    else:
        target[key] = draw(PLAUSIBLE[key] if change == "plausible" else json_values)
    return document


valid_programs = st.builds(random_program, st.sampled_from(SPACE_NAMES), st.integers(0, 2**32))
#: A program document: a space's own program, whole or broken in one place; the schema's fields each
#: right or wrong; or any JSON value at all.
program_documents = st.one_of(
    valid_programs,
    valid_programs.flatmap(broken),
    valid_programs.flatmap(broken),
    st.fixed_dictionaries({
        "format": right_or_wrong(st.just(FORMAT)), "version": right_or_wrong(st.just(VERSION)),
        "space": right_or_wrong(st.sampled_from(SPACE_NAMES)),
        "nodes": right_or_wrong(st.lists(schema_nodes, max_size=10)),
        "outputs": right_or_wrong(st.lists(st.integers(min_value=-1, max_value=12), max_size=2))}),
    json_values,
)


@st.composite
def program_texts(draw):
    """The bytes of a program file: a document written as JSON (with NaN and Infinity as Python
    writes them), then maybe cut short, spliced with junk, or not UTF-8 at all."""
    text = json.dumps(draw(program_documents))
    fault = draw(st.sampled_from(["none", "cut", "none", "splice", "none", "nesting", "none", "bytes"]))
    if fault == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif fault == "splice":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(alphabet=string.printable + "[]{}\"\\\u00e9\ufeff", max_size=6)) + text[at:]
    elif fault == "nesting":
        text = "[" * draw(st.integers(900, 3000)) + text
    data = text.encode()
    if fault == "bytes":
        data = draw(st.binary(max_size=64)) + data
    return data


def test_program_files_read_validate_or_fail_with_one_error():
    spaces = [grammar(name) for name in SPACE_NAMES]


    @fuzz_settings(PROGRAM_CASES)
    @given(program_texts())
    def case(data: bytes):
        try:
            program = Program.from_json(data.decode("utf-8"))
        except (ProgramError, UnicodeDecodeError):
            return
        for space in spaces:
            try:
                space.validate(program)
            except ProgramError:
                continue
            again = Program.from_json(program.to_json())
            assert again == program and again.to_dict() == program.to_dict()
            assert isinstance(space.describe(program), str)
            [evaluation] = evaluate_safely(space.evaluator, [program])
            assert isinstance(evaluation, Evaluation)

    case()


# ---------------------------------------------------------------------------- command lines


def run_main(argv: list[str]) -> tuple[int, str]:
    """`evolve ARGV` in this process: (status, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as e:  # argparse: --help, or a usage error in one line
            status = e.code
    return status, err.getvalue()


def assert_one_clear_outcome(argv: list[str], status: int, err: str) -> None:
    assert "Traceback" not in err, (argv, err)
    assert status in (0, 2), (argv, status, err)
    if status == 2:
        errors = [line for line in err.splitlines() if line.startswith("evolve: error:")]
        assert len(errors) == 1 and err.rstrip().splitlines()[-1] == errors[0], (argv, err)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Paths a careless user might pass: a real store with a finished run, another program's SQLite
    file, a text file, a directory, a missing file; program files valid, invalid and not UTF-8."""
    root = tmp_path_factory.mktemp("fuzz")
    store = str(root / "runs.db")
    assert main(["run", "sleep", "--budget", "12", "--space-opt", "seconds=0", "--db", store]) == 0
    foreign = str(root / "foreign.db")
    with contextlib.closing(sqlite3.connect(foreign)) as db:
        db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT)")
        db.commit()
    (root / "notes.txt").write_text("not a store\n")
    (root / "dir").mkdir()
    program = {"format": FORMAT, "version": VERSION, "space": "sleep",
               "nodes": [{"op": "input"}, {"op": "sin", "inputs": [0]}], "outputs": [1]}
    (root / "good.json").write_text(json.dumps(program))
    (root / "bad.json").write_text(json.dumps({**program, "outputs": [7]}))
    (root / "latin1.json").write_bytes(json.dumps(program).replace("sin", "s\u00e9n").encode("latin-1"))
    return {"root": str(root), "store": store,
            "paths": [store, foreign, str(root / "notes.txt"), str(root / "dir"), str(root / "missing.db"),
                      f"file:{store}?mode=ro", str(root / "good.json"), str(root / "bad.json"),
                      str(root / "latin1.json")]}


def mostly(good, bad):
    """`good` three times in four, else `bad` (hypothesis's own choice between strategies favours
    the first, so the mix is made explicit)."""
    return st.sampled_from([True, True, True, False]).flatmap(lambda ok: good if ok else bad)


#: What a user may type where a number goes.
int_texts = mostly(
    st.integers(-2, 30).map(str),
    st.one_of(st.integers().map(str), st.text(max_size=6),
              st.sampled_from(["9" * 5000, "", "-", "1.5", "1e3", "0x10", "NaN", "inf", " 3", "\u0663"])),
)
#: What a user may type as an option's value: mostly a plausible number, else any JSON or text.
option_values = mostly(
    st.one_of(st.integers(-2, 200).map(str), st.sampled_from(["0.5", "1e-3", "true", "null", "[0.1, 1]", "nguyen-2"])),
    st.one_of(json_values.map(json.dumps), st.text(max_size=8),
              st.sampled_from(["NaN", "-Infinity", "[" * 2000, "1" * 5000, '"x"', "1e400"])),
)


def option_pairs(keys: list[str]):
    """`key=value` texts: known and unknown keys, values of every JSON type and beyond."""
    return st.builds(lambda k, sep, v: f"{k}{sep}{v}", mostly(st.sampled_from(keys), st.text(max_size=6)),
                     mostly(st.just("="), st.sampled_from(["", ":", " = "])), option_values)


#: Option keys the fuzzer sets. Sleep's seconds, crash and hang options are left out: a valid value of
#: those waits, crashes or hangs by design (sleep is the executors' test space).
SPACE_KEYS = {
    "symbolic-regression": ["problem", "target", "max_nodes", "constants", "data_seed", "data"],
    "optimizers": ["suite", "steps", "seeds", "lr_grid", "seed_with", "max_nodes"],
    "sleep": ["max_nodes"],
}
STRATEGY_KEYS = {
    "regularized-evolution": ["population_size", "tournament_size"],
    "random-search": ["population_size"],
    "pam-rt": ["population_size", "tournament_size", "chain_length", "tournaments", "tournaments_per_call", "threshold"],
    "predictor-filter": ["population_size", "tournament_size", "candidates"],
}


@st.composite
def command_lines(draw, paths: list[str], root: str):
    """An `evolve` command line: every command and flag of the parser, values of every type. A run
    is in memory, of the sleep space (its evaluations cost nothing), with a small budget when the
    budget is valid: a long run is no error."""
    command = draw(st.sampled_from(["run", "show", "top", "export", "evaluate", "resume", "runs", "run",
                                    "plugins", "nope", "--help"]))
    db = draw(mostly(st.sampled_from(paths + [":memory:"]).map(lambda path: ["--db", path]), st.just([])))
    if command == "run":
        argv = ["run", draw(mostly(st.just("sleep"), st.sampled_from(["symbolic-regression", "", "x"]))),
                "--db", ":memory:", "--space-opt", "seconds=0"]
        argv += ["--budget", draw(mostly(st.integers(1, 6).map(str), int_texts))]
        for flag in draw(st.lists(st.sampled_from(["--seed", "--workers"]), max_size=2)):
            argv += [flag, draw(int_texts)]
        strategy = draw(mostly(st.sampled_from(["regularized-evolution", "random-search"]), st.text(max_size=5)))
        argv += ["--strategy", strategy]
        for flag, keys in (("--space-opt", SPACE_KEYS["sleep"]), ("--strategy-opt", STRATEGY_KEYS.get(strategy, ["x"]))):
            for pair in draw(st.lists(option_pairs(keys), max_size=2)):
                argv += [flag, pair]
        extra = draw(st.sampled_from([None, None, "--problem", "--executor", "--predictor", "--address", "--stop-when-solved"]))
        if extra == "--stop-when-solved":
            argv += [extra]
        elif extra is not None:
            argv += [extra, draw(st.sampled_from(["nguyen-3", "serial", "binary", "auto", *paths]) | st.text(max_size=5))]
        return argv
    if command in ("resume", "show", "top"):
        argv = [command, draw(int_texts)] + db
        if command == "show" and draw(st.booleans()):
            argv += ["--top", draw(int_texts)]
        if command == "top" and draw(st.booleans()):
            argv += ["-n", draw(int_texts)]
        return argv
    if command == "export":
        argv = ["export", draw(int_texts), draw(int_texts)] + db
        if draw(st.booleans()):
            argv += ["--format", draw(mostly(st.sampled_from(["json", "python", "optax"]), st.text(max_size=5)))]
        if draw(st.booleans()):  # only ever inside the test's directory
            name = draw(st.text(alphabet=string.ascii_letters + ". -_\u00e9", min_size=1, max_size=8))
            argv += ["-o", os.path.join(root, draw(st.sampled_from(["", "missing", "dir"])), name)]
        return argv
    if command == "evaluate":
        argv = ["evaluate", draw(mostly(st.just("sleep"), st.text(max_size=5))),
                draw(mostly(st.sampled_from(paths), st.text(max_size=6))), "--space-opt", "seconds=0"]
        for pair in draw(st.lists(option_pairs(SPACE_KEYS["sleep"]), max_size=2)):
            argv += ["--space-opt", pair]
        return argv
    return [command] + db + draw(st.lists(st.text(max_size=6), max_size=2))


@pytest.fixture(scope="module")
def manager():
    return PluginManager()


@st.composite
def option_sets(draw):
    """A space or strategy and the options a user gave it, as `--space-opt` or `--strategy-opt`
    texts (read by the CLI's own parser of them)."""
    kind = draw(st.sampled_from(["search space", "strategy"]))
    table = SPACE_KEYS if kind == "search space" else STRATEGY_KEYS
    name = draw(st.sampled_from(sorted(table)))
    pairs = draw(st.lists(option_pairs(table[name]), min_size=1, max_size=3))
    return kind, name, pairs


def test_option_values_build_or_fail_with_one_error(manager):
    """What `--space-opt` and `--strategy-opt` pass on, checked where a run checks it: the space is
    built (its grammar), or the strategy made for a small space, or one EvolveError says why not."""
    from evolve.cli import _options

    space = grammar("sleep")
    predictor = manager.lookup("predictor", "oracle")(space)

    @fuzz_settings(OPTION_CASES)
    @given(option_sets())
    def case(drawn):
        kind, name, pairs = drawn
        try:
            options = _options(pairs, "--option")
            if kind == "search space":
                manager.make_space(SpaceSpec(name, options))
            else:
                if name in ("pam-rt", "predictor-filter"):
                    options = {**options, "predictor": predictor}
                manager.make_strategy(name, space, options)
        except EvolveError:
            pass

    case()


def test_command_lines_end_in_a_result_or_one_clear_line(files, monkeypatch):
    monkeypatch.chdir(files["root"])  # where a command without --db makes its evolve.db

    @fuzz_settings(CLI_CASES)
    @given(st.data())
    def case(data):
        argv = data.draw(command_lines(files["paths"], files["root"]))
        status, err = run_main(argv)
        assert_one_clear_outcome(argv, status, err)

    case()


def test_program_files_given_to_evaluate(tmp_path):
    """`evolve evaluate sleep FILE` on fuzzed program files: a result or one line."""
    path = str(tmp_path / "program.json")

    @fuzz_settings(EVALUATE_CASES)
    @given(program_texts())
    def case(data: bytes):
        with open(path, "wb") as f:
            f.write(data)
        argv = ["evaluate", "sleep", path, "--space-opt", "seconds=0"]
        status, err = run_main(argv)
        assert_one_clear_outcome(argv, status, err)

    case()

