"""The package's shape stays as the developers' guide asks: small files and functions, one-way imports.

- no source file over 500 lines, no function or method over 80 lines (benchmarks, scripts and
  tests included);
- no module imports a private (underscore) name from another module;
- no import cycle between the package's modules (lazy imports inside functions included);
- the engine imports no napari and no Qt.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "napari_style_transfer"
NAME = "napari_style_transfer"
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import in the file."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, path.name == "__init__.py")
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    out.append((sub, None, node.lineno))
                else:
                    out.append((target, alias.name, node.lineno))
    return out


def _all_python_files() -> dict[str, Path]:
    """The package's modules, and the benchmarks, scripts and tests (they follow the same limits)."""
    root = PACKAGE.parent.parent
    others = {
        str(path.relative_to(root)): path
        for folder in ("benchmarks", "scripts", "tests")
        for path in sorted((root / folder).rglob("*.py"))
    }
    return {**MODULES, **others}


def test_files_and_functions_stay_small():
    too_long = []
    for module, path in _all_python_files().items():
        text = path.read_text()
        if text.count("\n") > MAX_FILE_LINES:
            too_long.append(f"{module}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{module}.{node.name} (line {node.lineno}): {length} lines")
    assert not too_long, "\n".join(too_long)


def test_no_module_imports_a_private_name_of_another():
    private = []
    for module, path in MODULES.items():
        for target, name, line in _imports(module, path):
            inside = target == NAME or target.startswith(NAME + ".")
            if inside and name is not None and name.startswith("_") and not name.startswith("__"):
                private.append(f"{module}:{line} imports {target}.{name}")
            if inside and not _private_module_visible(module, target):
                private.append(f"{module}:{line} imports the private module {target}")
    assert not private, "\n".join(private)


def _private_module_visible(module: str, target: str) -> bool:
    """A private module or package (``_qt``, ``_widget``) is for the package that holds it."""
    parts = target.split(".")
    for i, part in enumerate(parts[1:], start=1):
        owner = ".".join(parts[:i])
        if (
            part.startswith("_")
            and not part.startswith("__")
            and not (module == owner or module.startswith(owner + "."))
        ):
            return False
    return True


def test_no_import_cycles():
    graph = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, _name, _line in _imports(module, path):
            while target and target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != module and not module.startswith(target + "."):
                graph[module].add(target)
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" → ".join([*trail[trail.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith(f"{NAME}.engine")])
def test_engine_imports_no_gui(module):
    gui = [
        t
        for t, _n, _l in _imports(module, MODULES[module])
        if t.split(".")[0]
        in {"napari", "qtpy", "magicgui", "superqt", "PyQt5", "PyQt6", "PySide2", "PySide6"}
    ]
    assert not gui, f"{module} imports {gui}"
