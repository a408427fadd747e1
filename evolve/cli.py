"""The `evolve` command. Every mistake a user can make ends in one clear line and exit status 2;
Ctrl-C or SIGTERM ends in one line and status 130, whenever it comes (evolve/interrupts.py).

Before `main` runs, only argparse and evolve's errors and signal handling are imported: every other
module is imported by the command that needs it, inside `main`, where a Ctrl-C during a slow import
(JAX, sympy, Ray) is handled like one at any other moment.
"""

from __future__ import annotations

import argparse
import os
import sys

from evolve.errors import EvolveError, OptionError, ProgramError
from evolve.interrupts import EXIT_INTERRUPTED, Interrupts

EXIT_USER_ERROR = 2
#: The most evaluations a run may keep in flight (the serial executor evaluates them as one batch).
MAX_WORKERS = 10_000
#: Run and individual ids, and counts of them, are SQLite integers.
MAX_ID = 2**63 - 1


def main(argv: list[str] | None = None) -> int:
    with Interrupts() as interrupts:
        try:
            import logging

            parser = _parser()
            if argv is not None and any("\x00" in arg for arg in argv):  # no command line holds one
                parser.error("an argument holds a NUL character")
            args = parser.parse_args(argv)
            args.interrupts = interrupts
            logging.basicConfig(level=logging.WARNING, format="evolve: %(levelname)s: %(message)s")
            if args.verbose:
                logging.getLogger("evolve").setLevel(logging.INFO)
            return args.command(args) or 0
        except EvolveError as e:
            print(f"evolve: error: {_one_line(str(e))}", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            interrupts.handled()
            return EXIT_INTERRUPTED
        except BrokenPipeError:  # `evolve show 1 | head`: the reader left, which is fine
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            return 0


# ---------------------------------------------------------------------------- commands


def cmd_run(args) -> int:
    from evolve.engine import prepare, start_run
    from evolve.store import RunConfig, Store

    space_options = _options(args.space_opt, "--space-opt")
    if args.problem is not None:
        space_options["problem"] = args.problem
    config = RunConfig(
        space=args.space,
        space_options=space_options,
        strategy=args.strategy,
        strategy_options=_options(args.strategy_opt, "--strategy-opt"),
        predictor=args.predictor,
        predictor_options=_options(args.predictor_opt, "--predictor-opt"),
        executor=args.executor,
        executor_options=_executor_options(args),
        workers=args.workers,
        budget=args.budget,
        seed=args.seed,
        stop_when_solved=args.stop_when_solved,
        metric_budget=_options([args.budget_metric] if args.budget_metric else None, "--budget-metric"),
    )
    config = prepare(config)  # a mistake ends here, before a store file is made
    with Store(args.db) as store:
        engine = start_run(store, config)
        # one write, newline included: a Ctrl-C between print's two writes would glue the next line to it
        sys.stderr.write(f"run {engine.run.id} started in {args.db} (if stopped: evolve resume {engine.run.id}"
                         f" --db {args.db})\n")
        return _execute(engine, store, args)


def cmd_resume(args) -> int:
    from evolve.engine import resume_run
    from evolve.store import Store, store_file

    filename = store_file(args.db)
    if filename is not None and not os.path.exists(filename):  # a mistyped --db is not made a new store
        raise EvolveError(f"no store at {args.db}; `evolve runs --db PATH` lists a store's runs")
    with Store(args.db) as store:
        engine = resume_run(store, args.run)
        return _execute(engine, store, args)


def _executor_options(args) -> dict:
    options = _options(args.executor_opt, "--executor-opt")
    if args.address is not None:
        if args.executor != "ray":
            raise OptionError("--address joins a Ray cluster; it needs --executor ray")
        options["address"] = args.address  # stored with the run, so `evolve resume` joins it again
    return options


def _execute(engine, store, args) -> int:
    from evolve import report

    args.interrupts.message = f"\nevolve: interrupted; continue with: evolve resume {engine.run.id} --db {args.db}"
    reason = engine.execute()  # Ctrl-C: KeyboardInterrupt, reported by `main`
    run = store.run(engine.run.id)
    evaluated, cached = store.counts(run.id)
    best = store.top(run.id, 1)
    print(f"run {run.id} finished ({reason}): {evaluated} evaluations, {cached} answered by the duplicate cache")
    if best:
        b = best[0]
        solved = " [solved]" if b.evaluation.metrics.get("solved") else ""
        print(f"best: individual {b.id}, fitness {b.fitness:.6g}{solved}: {report.describe(engine.space, b.program)}")
    return 0


def cmd_runs(args) -> int:
    from evolve import report
    from evolve.plugin_manager import PluginManager

    spaces = PluginManager().registry("search space")  # a run that gave no problem shows its space's default
    with _existing_store(args.db) as store:
        runs = store.runs()
        if args.json:
            print(report.to_json([report.run_row(run, store, spaces.get(run.config.space)) for run in runs]))
            return 0
        print(report.RUNS_HEADER)
        for run in runs:
            print(report.run_line(run, store, spaces.get(run.config.space)))
    return 0


def cmd_show(args) -> int:
    from evolve import report

    with _existing_store(args.db) as store:
        run = store.run(args.run)
        space = _space_of(run)
        print(report.to_json(report.show_data(store, run, space, args.top)) if args.json
              else report.show(store, run, space, top=args.top))
    return 0


def cmd_top(args) -> int:
    from evolve import report

    with _existing_store(args.db) as store:
        run = store.run(args.run)
        space = _space_of(run)
        print(report.to_json(report.top_rows(store, run, space, args.n)) if args.json
              else report.top_table(store, run, space, args.n))
    return 0


def cmd_export(args) -> int:
    with _existing_store(args.db) as store:
        run = store.run(args.run)
        space = _space_of(run)
        space.check_export_format(args.format)
        text = space.export(store.individual(run.id, args.id).program, args.format)
    if args.output:
        try:
            with open(args.output, "w") as f:
                f.write(text if text.endswith("\n") else text + "\n")
        except OSError as e:
            raise EvolveError(f"cannot write {args.output}: {e.strerror or e}") from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_report(args) -> int:
    from evolve import report_html

    with _existing_store(args.db) as store:
        report_html.write(store, args.runs, args.output, _space_of, top=args.top)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_draw(args) -> int:
    from evolve import drawing

    with _existing_store(args.db) as store:
        run = store.run(args.run)
        program = store.individual(run.id, args.id).program
        drawing.write(program, _space_of(run).vocabulary, args.output)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    import json

    from evolve import report
    from evolve.executors import evaluate_safely
    from evolve.plugin_manager import PluginManager, SpaceSpec
    from evolve.program import Program

    space_options = _options(args.space_opt, "--space-opt")
    if args.problem is not None:
        space_options["problem"] = args.problem
    space = PluginManager().make_space(SpaceSpec(args.space, space_options))
    try:
        with open(args.program, "rb") as f:
            content = f.read()
    except OSError as e:
        raise ProgramError(f"cannot read {args.program}: {e.strerror}") from None
    try:
        program = Program.from_json(content.decode("utf-8"))
        if program.space != args.space:
            raise ProgramError(f"a program of space {program.space!r}, not {args.space!r}")
        space.validate(program)
    except UnicodeDecodeError as e:
        raise ProgramError(f"{args.program} is not UTF-8 text (byte {content[e.start]:#04x} at offset {e.start});"
                           " a program file is JSON") from None
    except ProgramError as e:  # which file, when a script evaluates many
        raise ProgramError(f"{args.program}: {e}") from None
    [evaluation] = evaluate_safely(space.evaluator, [program])
    print(json.dumps({"fitness": evaluation.fitness, "metrics": evaluation.metrics, "error": evaluation.error}))
    print(report.describe(space, program))
    return 0


def cmd_plugins(args) -> int:
    from evolve.plugin_manager import KINDS, PluginManager

    manager = PluginManager()
    if args.name is not None:
        return _describe_plugin(manager, args.name, args.json)
    if args.json:
        from evolve import report

        print(report.to_json({
            "plugins": [{"name": name, "kind": kind, "class": f"{cls.__module__}.{cls.__qualname__}",
                         "plugin": manager.provider(kind, name)}
                        for kind in KINDS for name, cls in sorted(manager.registry(kind).items())],
            "reporters": manager.reporters(),
            "modules": [{"name": source.name, "module": source.module, "distribution": source.distribution,
                         "version": source.version, "error": source.error} for source in manager.sources],
        }))
        return 0
    plural = {"search space": "search spaces", "strategy": "strategies", "predictor": "predictors", "executor": "executors"}
    for kind in KINDS:
        registry = manager.registry(kind)
        print(f"{plural[kind]}:")
        for name in sorted(registry):
            cls = registry[name]
            print(f"  {name:<24} {cls.__module__}.{cls.__qualname__}  (from {manager.provider(kind, name)})")
        if not registry:
            print("  (none)")
    print("reporters (lifecycle hooks):")
    for name in manager.reporters():
        print(f"  {name}")
    print("plugin modules:")
    for source in manager.sources:
        where = f"{source.distribution} {source.version}"
        status = f"FAILED: {source.error}" if source.error else "ok"
        print(f"  {source.name:<24} {source.module:<48} {where:<20} {status}")
    return 0


def _describe_plugin(manager, name: str, as_json: bool) -> int:
    """`evolve plugins NAME`: the plugin's options (type, default, documentation) and problems."""
    from evolve import plugin_docs, report
    from evolve.errors import PluginError
    from evolve.plugin_manager import KINDS

    docs = plugin_docs.find(name, manager)
    if not docs:
        known = sorted({n for kind in KINDS for n in manager.registry(kind)})
        raise PluginError(f"no plugin named {name!r}; installed: {', '.join(known) or 'none'}")
    if as_json:
        print(report.to_json([plugin_docs.as_dict(doc) for doc in docs]))
    else:
        print("\n\n".join(plugin_docs.render(doc) for doc in docs))
    return 0


# ---------------------------------------------------------------------------- helpers


def _options(pairs: list[str] | None, flag: str) -> dict:
    """`k=v` pairs; values are read as JSON where they parse (numbers, true/false, lists), else as text."""
    import json

    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise OptionError(f"{flag} takes key=value, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except RecursionError:
            raise OptionError(f"{flag} {key}: the value is nested too deeply") from None
        except ValueError as e:
            if not isinstance(e, json.JSONDecodeError):  # a number of thousands of digits
                raise OptionError(f"{flag} {key}: the value has {len(value)} characters; it is no number this option can use") from None
            options[key] = value
    return options


def _existing_store(path: str):
    """The store at `path`, opened read-only: reading a run writes nothing, anywhere."""
    from evolve.store import Store

    return Store(path, read_only=True)


def _space_of(run):
    """The run's space grammar (never its evaluator: showing a run trains nothing)."""
    from evolve.plugin_manager import PluginManager, SpaceSpec

    return PluginManager().make_space(SpaceSpec(run.config.space, run.config.space_options))


def _parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="evolve", description="Evolutionary search for ML programs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    parser.add_argument("--version", action=_Version, help="print evolve's version and exit")
    parser.set_defaults(command=lambda args: parser.print_help())
    sub = parser.add_subparsers(title="commands", parser_class=_ArgumentParser)

    def with_db(p):
        p.add_argument("--db", default="evolve.db", help="the SQLite store (a file, created by `run`)")
        return p

    run = with_db(sub.add_parser("run", help="start a search"))
    run.add_argument("space", help="search space (see `evolve plugins`)")
    run.add_argument("--problem", help="the space's problem, e.g. nguyen-7 or data.csv (default: the space's"
                     " own; `evolve plugins SPACE` lists its problems)")
    run.add_argument("--strategy", default="regularized-evolution", help="how programs are proposed"
                     " (see `evolve plugins`)")
    run.add_argument("--budget", type=_count(None), default=1000, help="evaluations to spend")
    run.add_argument("--seed", type=_count(0), default=0, help="the run's random seed (0 or more)")
    run.add_argument("--predictor", help="a predictor for strategies that use one (e.g. binary; default: the"
                     " strategy's own, none for unguided strategies)")
    run.add_argument("--executor", default="serial", help="serial (in this process) or ray")
    run.add_argument("--address", help="with --executor ray: the cluster to join (auto, HOST:PORT or"
                     " ray://HOST:10001); default: start Ray on this machine")
    run.add_argument("--workers", type=_count(1, MAX_WORKERS), default=16,
                     help="evaluations kept in flight at once (the serial executor evaluates them as one batch)")
    run.add_argument("--stop-when-solved", action="store_true", help="stop once a program solves the problem")
    run.add_argument("--budget-metric", metavar="METRIC=TOTAL", help="also stop once the evaluations' values of"
                     " a metric add up to TOTAL, e.g. training_seconds=5e6 (NAS-Bench-101's simulated training time)")
    run.add_argument("--space-opt", action="append", metavar="K=V", help="a search-space option (repeatable)")
    run.add_argument("--strategy-opt", action="append", metavar="K=V", help="a strategy option (repeatable)")
    run.add_argument("--predictor-opt", action="append", metavar="K=V", help="a predictor option (repeatable)")
    run.add_argument("--executor-opt", action="append", metavar="K=V", help="an executor option (repeatable)")
    run.set_defaults(command=cmd_run)

    resume = with_db(sub.add_parser("resume", help="continue a stopped or killed run"))
    resume.add_argument("run", type=_count(1, MAX_ID), help="the run's id (see `evolve runs`)")
    resume.set_defaults(command=cmd_resume)

    runs = with_db(sub.add_parser("runs", help="list the runs in a store"))
    runs.add_argument("--json", action="store_true", help="print JSON for scripts (keys: see README)")
    runs.set_defaults(command=cmd_runs)

    show = with_db(sub.add_parser("show", help="a run's progress, fitness curve and best programs"))
    show.add_argument("run", type=_count(1, MAX_ID), help="the run's id (see `evolve runs`)")
    show.add_argument("--json", action="store_true", help="print JSON for scripts (keys: see README)")
    show.add_argument("--top", type=_count(0, MAX_ID), default=5, help="how many of the best programs to list")
    show.set_defaults(command=cmd_show)

    top = with_db(sub.add_parser("top", help="a run's best programs"))
    top.add_argument("run", type=_count(1, MAX_ID), help="the run's id (see `evolve runs`)")
    top.add_argument("--json", action="store_true", help="print JSON for scripts (keys: see README)")
    top.add_argument("-n", type=_count(0, MAX_ID), default=10, help="how many programs to list")
    top.set_defaults(command=cmd_top)

    export = with_db(sub.add_parser("export", help="write one program in a format of its space"))
    export.add_argument("run", type=_count(1, MAX_ID), help="the run's id (see `evolve runs`)")
    export.add_argument("id", type=_count(1, MAX_ID), help="individual id (see `evolve top`)")
    export.add_argument("--format", default="json", help="one of the space's formats (symbolic-regression:"
                        " sympy, latex, python, json)")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    export.set_defaults(command=cmd_export)

    report = with_db(sub.add_parser("report", help="write runs as one self-contained HTML page"))
    report.add_argument("runs", nargs="+", type=_count(1, MAX_ID), metavar="RUN", help="run ids (see `evolve runs`)")
    report.add_argument("--output", "-o", required=True, help="the HTML file to write, e.g. report.html")
    report.add_argument("--top", type=_count(1, 1000), default=5, help="how many of each run's best programs to show")
    report.set_defaults(command=cmd_report)

    draw = with_db(sub.add_parser("draw", help="draw one program as a picture (needs graphviz's dot)"))
    draw.add_argument("run", type=_count(1, MAX_ID), help="the run's id (see `evolve runs`)")
    draw.add_argument("id", type=_count(1, MAX_ID), help="individual id (see `evolve top`)")
    draw.add_argument("--output", "-o", required=True, help="the picture to write: FILE.svg or FILE.png")
    draw.set_defaults(command=cmd_draw)

    evaluate = sub.add_parser("evaluate", help="evaluate a program file (JSON) in a space")
    evaluate.add_argument("space", help="search space (see `evolve plugins`)")
    evaluate.add_argument("program", help="a program JSON file, e.g. from `evolve export ... --format json`")
    evaluate.add_argument("--problem", help="the space's problem (default: the space's own)")
    evaluate.add_argument("--space-opt", action="append", metavar="K=V", help="a search-space option (repeatable)")
    evaluate.set_defaults(command=cmd_evaluate)

    plugins = sub.add_parser("plugins", help="list plugins and where they come from, or one plugin's options")
    plugins.add_argument("name", nargs="?", help="a plugin (e.g. symbolic-regression, pam-rt): its options with"
                         " type, default and documentation, and a space's problems")
    plugins.add_argument("--json", action="store_true", help="print JSON for scripts")
    plugins.set_defaults(command=cmd_plugins)
    return parser


def _count(least: int | None, most: int | None = None):
    """An argparse type: a whole number from `least` to `most` (no bound where None; the budget's
    is the engine's to check, for every caller)."""

    def parse(text: str) -> int:
        shown = text if len(text) <= 40 else text[:40] + "..."
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {shown!r}") from None
        if (least is not None and value < least) or (most is not None and value > most):
            bound = f"at least {least}" if most is None else f"from {least} to {most}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {shown}")
        return value

    return parse


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows every option's default. An option that is off, or unset (None), by default
    says in its own help what that means instead."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class _Version(argparse.Action):
    """--version: the installed distribution's version, read only when asked (help stays fast)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from evolve.version import DISTRIBUTION, version

        print(f"{DISTRIBUTION} {version()}")
        parser.exit()


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, with its errors in the one-line form every other error takes, and every default shown
    in help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        print(f"evolve: error: {_one_line(message)} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def _one_line(message: str) -> str:
    """An error message as one line: control characters and line separators a user typed (a newline
    or a carriage return in an argument or a file name) are written as escapes."""
    return message.translate(_CONTROL_ESCAPES)


_CONTROL_ESCAPES = {code: f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"
                    for code in [*range(32), *range(127, 160), 0x2028, 0x2029] if chr(code) != "\t"}


if __name__ == "__main__":
    sys.exit(main())
