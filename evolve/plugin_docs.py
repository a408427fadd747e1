"""What a plugin accepts, read from its own code: `evolve plugins NAME`.

A plugin's options are its constructor's keyword arguments (evolve.plugin_manager.construct), so the
signature gives each option's type and default, and the constructor's docstring (or the class's)
gives its documentation, written as `name: text` (several options may share a line, and an option's
text may run on over the following lines). A search space may also name its problems: a `problems()`
classmethod returning `{name: one line}` (what `--problem` accepts besides the space's own files).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from typing import Any

from evolve.plugin_manager import KINDS, PluginManager

#: Constructor arguments the engine passes itself, and the command-line flag that sets each.
SET_BY_FLAG = {("strategy", "predictor"): "--predictor", ("executor", "workers"): "--workers"}
#: The flag that passes a kind's options.
OPTION_FLAG = {"search space": "--space-opt", "strategy": "--strategy-opt", "predictor": "--predictor-opt",
               "executor": "--executor-opt"}
#: How many leading positional arguments the plugin manager passes each kind (the space, its spec).
POSITIONAL = {"search space": 0, "strategy": 1, "predictor": 1, "executor": 1}


@dataclasses.dataclass(frozen=True)
class OptionDoc:
    name: str
    type: str
    default: Any
    doc: str
    flag: str  # how a user sets it: `--space-opt name=...`, or a flag of its own (--workers)


@dataclasses.dataclass(frozen=True)
class PluginDoc:
    name: str
    kind: str
    cls: type
    provider: str
    summary: str
    options: tuple[OptionDoc, ...]
    problems: dict[str, str]


def find(name: str, manager: PluginManager | None = None) -> list[PluginDoc]:
    """Every registered plugin of that name (one per kind that has it); empty when there is none."""
    manager = manager or PluginManager()
    found = []
    for kind in KINDS:
        cls = manager.registry(kind).get(name)
        if cls is not None:
            found.append(document(name, kind, cls, manager.provider(kind, name)))
    return found


def document(name: str, kind: str, cls: type, provider: str = "") -> PluginDoc:
    """The documentation of one plugin class registered as `name` of `kind` (see KINDS)."""
    docs = parameter_docs(cls)
    options = []
    params = [p for p in inspect.signature(cls).parameters.values()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)][POSITIONAL[kind]:]
    hints = _type_hints(cls)
    for param in params:
        flag = SET_BY_FLAG.get((kind, param.name), f"{OPTION_FLAG[kind]} {param.name}=...")
        default = None if param.default is inspect.Parameter.empty else param.default
        options.append(OptionDoc(param.name, _type_name(hints.get(param.name, param.annotation)), default,
                                 docs.get(param.name, ""), flag))
    problems = getattr(cls, "problems", None)
    return PluginDoc(name, kind, cls, provider, summary(cls), tuple(options),
                     dict(problems()) if callable(problems) else {})


def summary(cls: type) -> str:
    """The first paragraph of the class's docstring, or of its module's, as one line."""
    for doc in (cls.__doc__, inspect.getmodule(cls).__doc__ if inspect.getmodule(cls) else None):
        if doc:
            return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())
    return ""


def parameter_docs(cls: type) -> dict[str, str]:
    """`{option: its documentation as one line}` from `name: text` entries in the docstrings of the
    constructor, the class, its bases, then the module. Several may share a line, and several options
    one entry (`steps, batch: ...`); an entry runs until the next one or the end of its paragraph."""
    params = list(inspect.signature(cls).parameters)
    if not params:
        return {}
    name = "(?:" + "|".join(map(re.escape, params)) + ")"
    pattern = re.compile(r"(?:(?<=^)|(?<=[\s.;(]))(" + name + r"(?:,\s*" + name + r")*):\s")
    docs: dict[str, str] = {}
    sources = []
    for owner in cls.__mro__:  # a subclass's words first, then what its bases say of the same option
        sources += [getattr(owner.__dict__.get("__init__"), "__doc__", None), owner.__dict__.get("__doc__")]
    sources.append(getattr(inspect.getmodule(cls), "__doc__", None))  # e.g. "* crash_rate: ..." in a list
    paragraphs = [part for doc in sources for part in re.split(r"\n\s*\n", doc or "")]
    for paragraph in paragraphs:
        text = " ".join(paragraph.split())
        marks = list(pattern.finditer(text))
        for mark, following in zip(marks, marks[1:] + [None]):
            end = following.start() if following is not None else len(text)
            for option in re.split(r",\s*", mark.group(1)):  # "steps, batch, lr: ..." documents all three
                docs.setdefault(option, text[mark.end():end].strip(" *"))
    return docs


def render(doc: PluginDoc, width: int = 100) -> str:
    """The text `evolve plugins NAME` prints."""
    import textwrap

    where = f"{doc.cls.__module__}.{doc.cls.__qualname__}" + (f", from plugin {doc.provider}" if doc.provider else "")
    lines = [f"{doc.name}: {doc.kind} ({where})"]
    if doc.summary:
        lines += textwrap.wrap(doc.summary, width, initial_indent="  ", subsequent_indent="  ")
    lines.append("")
    if not doc.options:
        lines.append("options: none")
    else:
        lines.append(f"options ({OPTION_FLAG[doc.kind]} NAME=VALUE):")
        name_w = max(len("name"), *(len(o.name) for o in doc.options))
        type_w = max(len("type"), *(len(o.type) for o in doc.options))
        default_w = max(len("default"), *(len(_shown(o.default)) for o in doc.options))
        indent = " " * (2 + name_w + 2 + type_w + 2 + default_w + 2)
        lines.append(f"  {'name':<{name_w}}  {'type':<{type_w}}  {'default':<{default_w}}  documentation")
        for o in doc.options:
            text = o.doc or "(undocumented)"
            if not o.flag.startswith(OPTION_FLAG[doc.kind]):
                text = f"set with {o.flag}. {o.doc}".strip()
            head = f"  {o.name:<{name_w}}  {o.type:<{type_w}}  {_shown(o.default):<{default_w}}  "
            wrapped = textwrap.wrap(text, max(40, width - len(indent))) or [""]
            lines.append(head + wrapped[0])
            lines += [indent + line for line in wrapped[1:]]
    if doc.problems:
        lines += ["", "problems (--problem NAME):"]
        name_w = max(len(name) for name in doc.problems)
        lines += [f"  {name:<{name_w}}  {text}" for name, text in doc.problems.items()]
    return "\n".join(lines)


def as_dict(doc: PluginDoc) -> dict:
    """`doc` as JSON-able data (for `evolve plugins NAME --json`)."""
    return {
        "name": doc.name, "kind": doc.kind, "class": f"{doc.cls.__module__}.{doc.cls.__qualname__}",
        "plugin": doc.provider, "summary": doc.summary,
        "options": [{"name": o.name, "type": o.type, "default": _jsonable(o.default), "doc": o.doc, "flag": o.flag}
                    for o in doc.options],
        "problems": doc.problems,
    }


def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - annotations a plugin's module cannot resolve: shown as written
        return {}


def _type_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return "-"
    if isinstance(annotation, type):
        return annotation.__name__
    return re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", str(annotation)).replace("NoneType", "None")


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else repr(value)
