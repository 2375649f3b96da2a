"""Layering rules, checked on the source with ``ast`` (nothing is imported to check them).

- shared/ stands alone: no server, mobile, Flask, SQLAlchemy, Kivy or requests.
- All cryptography is in shared/crypto.py: no other module of shared/, server/ or mobile/ imports it.
- mobile/ and server/ never import each other.
- mobile/core runs without Kivy: it imports neither kivy nor mobile.ui.
- mobile/ui is a thin layer: no requests, sqlite3 or cryptography (it goes through mobile.core).

A directory that does not exist yet has no files to check; nothing is skipped.
"""
from __future__ import annotations

import ast
import functools
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_files(top: str) -> list[Path]:
    base = ROOT / top
    if not base.is_dir():
        return []
    return sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of_source(source: str, module: str, is_package: bool = False, filename: str = "<source>") -> set[str]:
    """Every module a source file imports, relative imports resolved to absolute names.

    ``from a import b`` yields both ``a`` and ``a.b`` (``b`` may be a submodule);
    ``importlib.import_module("x")`` and ``__import__("x")`` with a literal name count too.
    """
    tree = ast.parse(source, filename=filename)
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                keep = len(parts) - (node.level - 1)
                if keep < 0:
                    raise AssertionError(f"{filename}: relative import goes above the top package")
                base = ".".join(parts[:keep])
                base = ".".join(p for p in (base, node.module or "") if p)
            else:
                base = node.module or ""
            if base:
                found.add(base)
            found.update(".".join(p for p in (base, alias.name) if p) for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            arg = node.args[0]
            if name in ("import_module", "__import__") and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    return found


@functools.cache
def imports_of(path: Path) -> frozenset[str]:
    return frozenset(imports_of_source(
        path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py", str(path.relative_to(ROOT))
    ))


def hits(imported: set[str], forbidden) -> set[str]:
    """The imported names that are, or are inside, one of ``forbidden``."""
    return {m for m in imported for f in forbidden if m == f or m.startswith(f + ".")}


def violations(files, forbidden, allow=()) -> dict[str, list[str]]:
    out = {}
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if rel in allow:
            continue
        bad = hits(imports_of(path), forbidden)
        if bad:
            out[rel] = sorted(bad)
    return out


SHARED = python_files("shared")
SERVER = python_files("server")
MOBILE = python_files("mobile")
MOBILE_CORE = [p for p in MOBILE if p.relative_to(ROOT).parts[:2] == ("mobile", "core")]
MOBILE_UI = [p for p in MOBILE if p.relative_to(ROOT).parts[:2] == ("mobile", "ui")]


def test_shared_exists_and_parses():
    assert ROOT.joinpath("shared", "crypto.py") in SHARED
    for path in SHARED + SERVER + MOBILE:
        imports_of(path)  # a syntax error anywhere is reported here with its file


def test_shared_imports_neither_side_nor_frameworks():
    forbidden = ("server", "mobile", "flask", "flask_sqlalchemy", "sqlalchemy", "kivy", "requests")
    extra = {}
    for path in SHARED:  # any Flask extension counts as Flask
        flask_ext = sorted(m for m in imports_of(path) if m.split(".")[0].startswith("flask_"))
        if flask_ext:
            extra[path.relative_to(ROOT).as_posix()] = flask_ext
    assert violations(SHARED, forbidden) == {}
    assert extra == {}


def test_only_shared_crypto_imports_cryptography():
    assert violations(SHARED, ("cryptography", "nacl"), allow={"shared/crypto.py"}) == {}
    assert hits(imports_of(ROOT / "shared" / "crypto.py"), ("cryptography",))
    assert hits(imports_of(ROOT / "shared" / "crypto.py"), ("nacl",))


def test_server_and_mobile_never_import_cryptography():
    assert violations(SERVER + MOBILE, ("cryptography", "nacl")) == {}


def test_mobile_never_imports_server():
    assert violations(MOBILE, ("server",)) == {}


def test_server_never_imports_mobile():
    assert violations(SERVER, ("mobile",)) == {}


def test_mobile_core_runs_without_kivy():
    assert violations(MOBILE_CORE, ("kivy", "mobile.ui")) == {}


def test_mobile_ui_stays_thin():
    assert violations(MOBILE_UI, ("requests", "sqlite3", "cryptography")) == {}


@pytest.mark.parametrize("package", ["shared", "shared.schemas"])
def test_all_names_exist(package):
    module = importlib.import_module(package)
    names = module.__all__
    assert len(names) == len(set(names)), "duplicate names in __all__"
    missing = [name for name in names if not hasattr(module, name)]
    assert missing == []


# --- the checker itself: it must see what it is meant to forbid ------------------------------------

@pytest.mark.parametrize(
    "source, module, is_package, expected",
    [
        ("import kivy.uix.label", "mobile.core.store", False, {"kivy.uix.label"}),
        ("from kivy.app import App", "mobile.core.store", False, {"kivy.app", "kivy.app.App"}),
        ("from ..ui import screens", "mobile.core.store", False, {"mobile.ui", "mobile.ui.screens"}),
        ("from .. import ui", "mobile.core.store", False, {"mobile", "mobile.ui"}),
        ("from . import crypto", "shared.envelope", False, {"shared", "shared.crypto"}),
        ("from . import crypto", "shared", True, {"shared", "shared.crypto"}),
        ("from .base import X", "shared.schemas", True, {"shared.schemas.base", "shared.schemas.base.X"}),
        ("import importlib\nimportlib.import_module('server.app')", "mobile.x", False, {"importlib", "server.app"}),
        ("__import__('requests')", "mobile.ui.app", False, {"requests"}),
        ("def f():\n    import sqlite3", "mobile.ui.app", False, {"sqlite3"}),
        ("try:\n    import cryptography\nexcept ImportError:\n    pass", "server.x", False, {"cryptography"}),
    ],
)
def test_import_scanner(source, module, is_package, expected):
    assert imports_of_source(source, module, is_package) == expected


def test_hits_match_whole_names_only():
    assert hits({"requests_toolbelt", "serverless", "kivy_garden"}, ("requests", "server", "kivy")) == set()
    assert hits({"requests.adapters", "server"}, ("requests", "server")) == {"requests.adapters", "server"}
