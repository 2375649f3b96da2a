"""setup.cfg lists packages and data files by hand (an unrelated PyPI package is called "shared", so nothing
is discovered): an installed, non-editable copy holds exactly what it lists. These tests keep the list in
step with the tree, so a new subpackage or a template in a new folder cannot be left out of a wheel."""
from __future__ import annotations

import configparser
import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = ("server", "mobile", "shared")
DATA_SUFFIXES = {".html", ".css", ".js", ".kv"}


def _options() -> configparser.SectionProxy:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def _listed_packages() -> set[str]:
    return {line.strip() for line in _options()["options"]["packages"].splitlines()
            if line.strip() and not line.strip().startswith("#")}


def _package_data() -> dict[str, list[str]]:
    section = _options()["options.package_data"]
    return {package: [g.strip() for g in globs.split(",") if g.strip()] for package, globs in section.items()}


def _shipped(path: Path, packages: set[str], data: dict[str, list[str]]) -> bool:
    """True when ``path`` matches a package_data glob of a listed package (globs are relative to its folder)."""
    for package, globs in data.items():
        folder = ROOT.joinpath(*package.split("."))
        if package in packages and folder in path.parents:
            relative = path.relative_to(folder).as_posix()
            if any(fnmatch.fnmatchcase(relative, g) and relative.count("/") == g.count("/") for g in globs):
                return True
    return False


def test_every_python_package_is_listed():
    found = {p.parent.relative_to(ROOT).as_posix().replace("/", ".") for top in TOP for p in (ROOT / top).rglob("__init__.py")}
    assert found - _listed_packages() == set()


def test_every_listed_package_exists():
    missing = {p for p in _listed_packages() if not ROOT.joinpath(*p.split(".")).is_dir()}
    assert missing == set()


def test_every_template_style_and_kv_file_ships():
    packages, data = _listed_packages(), _package_data()
    files = [p for top in TOP for p in (ROOT / top).rglob("*") if p.suffix in DATA_SUFFIXES and "__pycache__" not in p.parts]
    assert len(files) > 20  # the dashboard's templates and the app's .kv files
    assert [p.relative_to(ROOT).as_posix() for p in files if not _shipped(p, packages, data)] == []
