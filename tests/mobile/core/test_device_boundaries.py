"""Dependency rules: the device core never imports kivy, the UI, the server, or ``cryptography`` directly."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FILES = sorted((ROOT / "mobile" / "core").rglob("*.py")) + [ROOT / "mobile" / "device_cli.py"]
FORBIDDEN = ("kivy", "mobile.ui", "server", "cryptography", "flask", "sqlalchemy")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_forbidden_imports(path):
    bad = {name for name in _imports(path) if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_core_imports_without_kivy_loaded():
    import subprocess
    import sys

    code = "import mobile.core.services, mobile.device_cli, sys; assert 'kivy' not in sys.modules and 'server' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
