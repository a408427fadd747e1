"""The core never reaches into the built-in plugins (design.md section 2): `evolve/` imports nothing
from `search_spaces/` (evolve.search_spaces) or `plugins/` (evolve.plugins), and does not compare
anything with their registered names. Built-ins reach the core only through the plugin manager,
exactly as a third-party package does."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORE = sorted((ROOT / "evolve").rglob("*.py"))
BUILTIN_PACKAGES = ("evolve.search_spaces", "evolve.plugins")


def builtin_names() -> set[str]:
    """Every name the built-in plugin modules register (the keys of their registration hooks' dicts)."""
    names = set()
    for path in [*(ROOT / "search_spaces").glob("*.py"), *(ROOT / "plugins").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("evolve_") and node.name.endswith("s"):
                for ret in ast.walk(node):
                    if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Dict):
                        names |= {k.value for k in ret.value.keys if isinstance(k, ast.Constant)}
    return names


def test_builtin_names_are_found():
    assert {"symbolic-regression", "optimizers", "pam-rt", "regularized-evolution", "binary"} <= builtin_names()


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_does_not_import_or_name_builtins(path):
    tree = ast.parse(path.read_text())
    names = builtin_names()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            modules = []
        for module in modules:
            assert not module.startswith(BUILTIN_PACKAGES), f"{path.name}:{node.lineno} imports {module}"
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                if isinstance(operand, ast.Constant) and operand.value in names:
                    raise AssertionError(f"{path.name}:{node.lineno} compares with the built-in name {operand.value!r}")
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "import_module":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and str(arg.value).startswith(BUILTIN_PACKAGES):
                    raise AssertionError(f"{path.name}:{node.lineno} imports {arg.value}")
