"""Load each widget's or screen's ``.kv`` file once, from next to its module."""
from __future__ import annotations

from pathlib import Path

from kivy.lang import Builder

_loaded: set[str] = set()


def load_kv(module_file: str) -> None:
    """Load ``<module>.kv`` sitting next to ``module_file`` (idempotent)."""
    path = str(Path(module_file).with_suffix(".kv"))
    if path not in _loaded:
        Builder.load_file(path)
        _loaded.add(path)
