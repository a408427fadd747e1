"""A program drawn as a picture: its live DAG in graphviz's `dot` language, rendered by the `dot`
program (the Debian `graphviz` package) to SVG or PNG.

Only what the outputs compute is drawn (dead nodes and unread inputs are pruned). Operand order is
shown on every op whose order matters: the edges into `sub`, `div` and other non-commutative ops are
numbered by argument (1 = first), so `a - b` and `b - a` look different; the inputs of commutative
and variadic ops are not numbered.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from evolve.errors import EvolveError, OptionError
from evolve.ops import COMMUTATIVE_NAMES, CONST, INPUT, Vocabulary
from evolve.program import Program

FORMATS = ("svg", "png")
#: seconds `dot` may take for one program (it takes milliseconds for hundreds of nodes)
DOT_TIMEOUT = 60


class DotMissing(EvolveError):
    """graphviz's `dot` is not installed."""


def to_dot(program: Program, vocabulary: Vocabulary) -> str:
    """The program's live DAG as `dot` source: inputs at the top, outputs at the bottom."""
    pruned = program.pruned()
    read = {j for node in pruned.nodes for j in node.inputs} | set(pruned.outputs)
    lines = [
        "digraph program {",
        '  graph [rankdir=TB, ordering=in, nodesep=0.3, ranksep=0.35, bgcolor="white"];',
        '  node [fontname="Helvetica", fontsize=12, height=0.3];',
        '  edge [fontname="Helvetica", fontsize=10, color="#555555", arrowsize=0.6];',
    ]
    for i, node in enumerate(pruned.nodes):
        if node.op == INPUT:
            if i not in read:
                continue
            name = vocabulary.inputs[i].name if i < len(vocabulary.inputs) else f"input {i}"
            attrs = {"label": name, "shape": "box", "style": "rounded,filled", "fillcolor": "#dbe9f6"}
        elif node.op == CONST:
            attrs = {"label": f"{node.value:.4g}", "shape": "box", "style": "filled", "fillcolor": "#f2f2f2"}
        else:
            attrs = {"label": node.op, "shape": "ellipse"}
        lines.append(f"  n{i} [{_attributes(attrs)}];")
    for i, node in enumerate(pruned.nodes):
        numbered = len(node.inputs) > 1 and not _order_free(node, vocabulary)
        for position, j in enumerate(node.inputs):
            label = f' [label="{position + 1}"]' if numbered else ""
            lines.append(f"  n{j} -> n{i}{label};")
    for k, o in enumerate(pruned.outputs):
        name = "output" if len(pruned.outputs) == 1 else f"output {k}"
        lines.append(f'  out{k} [{_attributes({"label": name, "shape": "plaintext", "fontcolor": "#555555"})}];')
        lines.append(f"  n{o} -> out{k} [style=dashed];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_source: str, format: str) -> bytes:
    """`dot_source` drawn by graphviz's `dot` in `format` (svg or png)."""
    if format not in FORMATS:
        raise OptionError(f"cannot draw a program as {format!r}; formats: {', '.join(FORMATS)}")
    dot = shutil.which("dot")
    if dot is None:
        raise DotMissing("drawing programs needs graphviz's `dot`, which is not installed"
                         " (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)")
    try:
        done = subprocess.run([dot, f"-T{format}"], input=dot_source.encode(), capture_output=True,
                              timeout=DOT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise EvolveError(f"graphviz's dot took more than {DOT_TIMEOUT} s to draw a program") from None
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise EvolveError(f"graphviz's dot failed: {reason[-1] if reason else f'exit status {done.returncode}'}")
    return done.stdout


def inline_svg(program: Program, vocabulary: Vocabulary) -> str:
    """The drawing as an `<svg>` element to place inside an HTML page (dot escapes every label)."""
    text = render(to_dot(program, vocabulary), "svg").decode()
    return text[text.index("<svg"):]


def write(program: Program, vocabulary: Vocabulary, path: str) -> None:
    """Draw the program into `path`; its extension (.svg or .png) picks the format."""
    format = os.path.splitext(path)[1].lstrip(".").lower()
    if format not in FORMATS:
        raise OptionError(f"{path}: the file name must end in .svg or .png")
    picture = render(to_dot(program, vocabulary), format)
    try:
        with open(path, "wb") as f:
            f.write(picture)
    except OSError as e:
        raise EvolveError(f"cannot write {path}: {e.strerror or e}") from None


def _order_free(node, vocabulary: Vocabulary) -> bool:
    """Whether the order of a node's arguments does not matter (commutative or variadic)."""
    if node.unordered or node.op in COMMUTATIVE_NAMES:
        return True
    overloads = vocabulary.overloads(node.op)
    return bool(overloads) and all(op.commutative or op.variadic is not None for op in overloads)


def _attributes(attrs: dict[str, str]) -> str:
    return ", ".join(f'{key}="{_quoted(value)}"' for key, value in attrs.items())


def _quoted(text: str) -> str:
    """Text inside a dot double-quoted string: backslashes (dot's own escapes, like \\N for the node
    name) and quotes escaped, line breaks as spaces."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("\r", " ")
