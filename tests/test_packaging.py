"""What a user installs: a complete sdist, a wheel that carries the plugin, metadata that reads right.

Builds the sdist and the wheel (from the sdist, as `python -m build` does) with the installed
setuptools. `make dist-check` goes further: it installs the wheel into a fresh venv and runs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"

# Tracked files that stay out of the sdist: CI configuration of the repository itself.
NOT_IN_SDIST = (".github/", ".gitignore", ".gitattributes")


def _load_pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[set[str], zipfile.ZipFile]:
    """The sdist's file names (without the top folder) and the wheel, built once for the module."""
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    with zipfile.ZipFile(wheel) as whl:
        whl.testzip()
    whl = zipfile.ZipFile(wheel)
    yield names, whl
    whl.close()


def _tracked_files() -> list[str] | None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        return None
    result = subprocess.run([git, "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        return None
    return [name for name in result.stdout.split("\0") if name and (ROOT / name).is_file()]


def test_sdist_holds_every_tracked_file(built):
    names, _ = built
    for name in (
        "tests/conftest.py",
        "LICENSE",
        "Makefile",
        ".ci/run",
        "src/napari_style_transfer/napari.yaml",
    ):
        assert name in names
    tracked = _tracked_files()
    if tracked is None:
        pytest.skip("not a git checkout: only the fixed list above was checked")
    missing = [name for name in tracked if not name.startswith(NOT_IN_SDIST) and name not in names]
    assert missing == []


def test_sdist_has_no_build_debris(built):
    names, _ = built
    debris = [n for n in names if re.search(r"(^|/)(__pycache__|\.venv|\.pytest_cache|out)/|\.pyc$", n)]
    assert debris == []
    assert not any(n.startswith(("build/", "dist/")) for n in names)


def test_every_path_the_readme_names_ships_in_the_sdist(built):
    names, _ = built
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"\b((?:scripts|benchmarks|docs|tests|\.ci)/[\w./-]*\w)", readme))
    assert paths, "the README names no files?"
    missing = sorted(p for p in paths if p not in names and not any(n.startswith(p + "/") for n in names))
    assert missing == []


def test_wheel_carries_the_plugin_and_nothing_of_the_source_tree(built):
    _, whl = built
    files = whl.namelist()
    manifest = whl.read("napari_style_transfer/napari.yaml").decode("utf-8")
    source = (ROOT / "src" / "napari_style_transfer" / "napari.yaml").read_text(encoding="utf-8")
    assert manifest == source
    assert {f.split("/", 1)[0] for f in files if "/" in f} == {
        "napari_style_transfer",
        next(f.split("/", 1)[0] for f in files if ".dist-info/" in f),
    }
    (entry_points,) = [f for f in files if f.endswith(".dist-info/entry_points.txt")]
    text = whl.read(entry_points).decode("utf-8")
    assert "[napari.manifest]\nnapari-style-transfer = napari_style_transfer:napari.yaml" in text
    assert "napari-style-transfer = napari_style_transfer.cli:main" in text


def test_wheel_metadata(built):
    _, whl = built
    (meta_name,) = [f for f in whl.namelist() if f.endswith(".dist-info/METADATA")]
    meta = whl.read(meta_name).decode("utf-8").split("\n\n", 1)[0].splitlines()
    assert "License-Expression: MIT" in meta and "License-File: LICENSE" in meta
    assert "Requires-Python: >=3.10" in meta
    for classifier in ("Framework :: napari", "Programming Language :: Python :: 3.13"):
        assert f"Classifier: {classifier}" in meta
    requires = [line.removeprefix("Requires-Dist: ") for line in meta if line.startswith("Requires-Dist:")]
    # A plugin never forces a Qt binding on napari users; only the extras bring one.
    core = [r for r in requires if "extra ==" not in r]
    assert not [r for r in core if re.match(r"(pyqt|pyside|napari\[)", r, re.IGNORECASE)]
    assert any(r.lower().startswith("pyqt6") and 'extra == "testing"' in r for r in requires)
    assert any(r.lower().startswith("pyqt5") and 'extra == "testing-pyqt5"' in r for r in requires)
    assert not any(r.lower().startswith("pyqt5") and 'extra == "testing"' in r for r in requires)


def test_build_system_and_pinned_ruff():
    project = _load_pyproject()
    assert "setuptools>=77.0.3" in project["build-system"]["requires"]
    extras = project["project"]["optional-dependencies"]
    (ruff,) = [r for r in extras["test-tools"] if r.startswith("ruff")]
    assert re.fullmatch(r"ruff==\d+\.\d+\.\d+", ruff), "ruff is pinned exactly"
    try:
        installed = version("ruff")
    except PackageNotFoundError:
        pytest.skip("ruff is not installed here")
    assert installed == ruff.split("==")[1], (
        "the installed ruff is not the pinned one: pip install -e '.[testing]'"
    )


# --- What PyPI and the napari hub show: the README, the citation, the changelog, the notice ---

README = ROOT / "README.md"
# Markdown links and images, reference definitions, and HTML src/href attributes.
_LINK_TARGETS = re.compile(
    r"\]\(\s*<?([^)\s>]+)|^\s*\[[^\]]+\]:\s*(\S+)|\b(?:src|href)\s*=\s*[\"']([^\"']+)", re.MULTILINE
)


def _link_targets(markdown: str) -> list[str]:
    return [next(g for g in match.groups() if g) for match in _LINK_TARGETS.finditer(markdown)]


def test_the_link_finder_sees_relative_links():
    text = '[a](docs/x.md) ![b](<docs/i.png>)\n[c]: LICENSE\n<img src="docs/y.gif"> [d](https://e.org/f)'
    assert _link_targets(text) == ["docs/x.md", "docs/i.png", "LICENSE", "docs/y.gif", "https://e.org/f"]


def test_every_readme_link_is_absolute_so_it_works_on_pypi_and_the_hub():
    targets = _link_targets(README.read_text(encoding="utf-8"))
    assert len(targets) > 10, "the README has (almost) no links?"
    relative = [t for t in targets if not t.startswith(("https://", "http://", "mailto:", "#"))]
    assert relative == []


def test_the_readme_opens_for_a_user_and_shows_the_live_preview():
    text = README.read_text(encoding="utf-8")
    sections = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert sections[:2] == ["Installation", "First use in napari"], sections
    assert "How to cite" in sections and "Development" in sections
    assert sections.index("Development") < 6, "the set-up commands belong near the top"
    intro = text.split("\n## ", 1)[0]
    gif = re.search(r"!\[[^\]]+\]\((https://\S+/(docs/images/live_preview\.gif))\)", intro)
    assert gif, "the README opens with the moving picture of the live preview"
    assert (ROOT / gif.group(2)).stat().st_size > 10_000
    from PIL import Image

    with Image.open(ROOT / gif.group(2)) as image:
        assert image.n_frames > 5, "a still picture is not a live preview"
    assert "Layout" not in sections, "internals go to docs/development.md"


def test_citation_cff_is_valid_and_cites_the_method_and_the_weights():
    cff = ROOT / "CITATION.cff"
    done = _check_citation(cff)
    assert done.returncode == 0, done.stdout + done.stderr
    text = cff.read_text(encoding="utf-8")
    assert "10.1109/CVPR.2016.265" in text  # Gatys, Ecker & Bethge
    assert "1409.1556" in text  # Simonyan & Zisserman


def test_a_broken_citation_fails_the_schema_check(tmp_path):
    bad = tmp_path / "CITATION.cff"
    bad.write_text("cff-version: 1.2.0\ntitle: x\n", encoding="utf-8")  # no message, no authors
    assert _check_citation(bad).returncode != 0


def _check_citation(path: Path) -> subprocess.CompletedProcess:
    """check-jsonschema's vendored Citation File Format schema against ``path``."""
    pytest.importorskip("check_jsonschema")
    cmd = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.citation-file-format"]
    return subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=120)


def test_the_changelog_keeps_a_changelog_and_the_notice_credits_the_weights():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "keepachangelog.com" in changelog
    assert re.search(r"^## \[Unreleased\]$", changelog, re.MULTILINE)
    for heading in re.findall(r"^## \[([^\]]+)\]", changelog, re.MULTILINE):
        assert heading == "Unreleased" or re.fullmatch(r"\d+\.\d+\.\d+\S*", heading), heading
    notice = (ROOT / "NOTICE").read_text(encoding="utf-8")
    for words in ("Simonyan", "Zisserman", "CC BY 4.0", "creativecommons.org/licenses/by/4.0"):
        assert words in notice
