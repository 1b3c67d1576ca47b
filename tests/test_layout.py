"""The package's shape stays as the developers' guide asks: one folder per audience, importing only downward.

- every package imports only the packages :data:`ALLOWED` lets it (lazy imports inside
  functions included), and that allow-list has no cycle;
- at the root only the entry points, the manifest's hooks and a few leaves;
- no module that only re-exports, outside an ``__init__.py``;
- the engine imports no napari, no Qt, no Pillow, tifffile, Dask or zarr;
- no source file over 500 lines, no function or method over 80 lines (benchmarks, scripts and
  tests included);
- no module imports a private (underscore) name from another module (tests, benchmarks and
  scripts included);
- no import cycle between the package's modules (lazy imports inside functions included).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "napari_style_transfer"
NAME = "napari_style_transfer"
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80

#: The package's leaves (they import nothing of the package) and the root's other files.
LEAVES = {"arrays", "messages", "samples", "version"}
ENTRY_POINTS = {"", "__main__"}  # the package's face (``__init__``) and ``python -m``
MANIFEST_HOOKS = {"_sample_data", "_reader", "_writer"}  # napari.yaml names them (and _qt.widget)
#: Each folder (or root file) → what it may import of the package. Read top-down: each line
#: names only lines below it, so imports go one way. ``""`` is the root ``__init__``.
ALLOWED: dict[str, set[str]] = {
    "__main__": {"cli"},
    "": {"engine", "batch", "version"},
    "_sample_data": {"samples"},
    "_reader": {"files"},
    "_writer": {"files", "settings"},
    "_qt": {"plugin", "batch", "settings", "engine", "files", "arrays", "messages", "samples", "version"},
    "cli": {"batch", "settings", "engine", "files", "arrays", "messages", "version"},
    "plugin": {"batch", "settings", "engine", "files", "arrays", "messages", "samples", "version"},
    "batch": {"engine", "files", "arrays", "messages", "version"},
    "settings": {"engine", "files", "arrays", "messages", "version"},
    "engine": {"arrays", "messages"},
    "files": {"arrays", "messages"},
    **{leaf: set() for leaf in LEAVES},
}
#: Libraries the engine never imports: it takes arrays, not files or clusters.
NOT_IN_ENGINE = {"PIL", "tifffile", "imageio", "dask", "distributed", "zarr"}
GUI = {"napari", "qtpy", "magicgui", "superqt", "PyQt5", "PyQt6", "PySide2", "PySide6"}


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


def _group(module: str) -> str:
    """The folder (or root file) a module belongs to: 'engine', 'cli', '_writer', '' for the root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _internal_imports(module: str) -> list[tuple[str, int]]:
    """(imported module of the package, line) for each import, a name imported from the root resolved."""
    out = []
    for target, name, line in _imports(module, MODULES[module]):
        if target == NAME and name is not None and f"{NAME}.{name}" in MODULES:
            target = f"{NAME}.{name}"
        if target == NAME or target.startswith(NAME + "."):
            out.append((target, line))
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


def test_tests_benchmarks_and_scripts_import_no_private_name_of_the_package():
    """They use what the package offers: a name a test needs is made public (or tested through one)."""
    private = []
    for label, path in _all_python_files().items():
        if label in MODULES:
            continue
        for target, name, line in _imports(label, path):
            ours = target == NAME or target.startswith(NAME + ".")
            if ours and name is not None and name.startswith("_") and not name.startswith("__"):
                private.append(f"{label}:{line} imports {target}.{name}")
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
def test_engine_imports_no_gui_no_files_and_no_cluster(module):
    found = sorted(
        {t for t, _n, _l in _imports(module, MODULES[module]) if t.split(".")[0] in GUI | NOT_IN_ENGINE}
    )
    assert not found, f"{module} imports {found}"


def test_packages_import_only_downward():
    upward = []
    for module in MODULES:
        group = _group(module)
        assert group in ALLOWED, f"{module}: {group!r} is not in ALLOWED (a new folder or root file?)"
        for target, line in _internal_imports(module):
            if _group(target) != group and _group(target) not in ALLOWED[group]:
                upward.append(
                    f"{module}:{line} imports {target} ({group or 'root'} may not use {_group(target)})"
                )
    assert not upward, "\n".join(upward)


def test_the_allow_list_goes_one_way():
    """Each entry names only entries below it: no cycle between folders, lazy imports or not."""
    order = list(ALLOWED)
    back = [f"{a} -> {b}" for a, uses in ALLOWED.items() for b in uses if order.index(b) <= order.index(a)]
    assert not back, back


def test_the_root_holds_only_entry_points_hooks_and_leaves():
    root = {_group(m) for m in MODULES if m.count(".") <= 1 and (PACKAGE / f"{_group(m)}.py").exists()}
    root |= {""} if (PACKAGE / "__init__.py").exists() else set()
    extra = root - ENTRY_POINTS - MANIFEST_HOOKS - LEAVES
    assert not extra, f"root modules that belong in a folder: {sorted(extra)}"
    leaves_importing = [
        f"{m} imports {t}" for m in MODULES if _group(m) in LEAVES for t, _l in _internal_imports(m)
    ]
    assert not leaves_importing, leaves_importing


def _only_re_exports(tree: ast.Module) -> bool:
    body = [
        node
        for node in tree.body
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))  # docstring
        and not (
            isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets)
        )
    ]
    return bool(body) and all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in body)


def test_no_module_only_re_exports_outside_an_init():
    shims = [
        module
        for module, path in MODULES.items()
        if path.name != "__init__.py" and _only_re_exports(ast.parse(path.read_text()))
    ]
    assert not shims, f"modules that only re-export (import from the source instead): {shims}"
