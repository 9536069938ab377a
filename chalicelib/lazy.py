"""Modules imported on their first use, so a cold start pays only for the code its event runs.

Chalice deploys one Lambda for every route and one per handler, and each imports all of app.py:
importing every service there made a cold receipt pay for the cancellation, closure, purchase and
refund code too (about a quarter of `import app`, docs/benchmarks.md "Cold start").
`lazy_module(name)` stands in for a module until something asks it for an attribute, then
imports it (`importlib.import_module`: under Python's import lock, so two threads asking at once
both get the fully run module) and keeps it. app.py imports the real modules for the type checker
(`if TYPE_CHECKING:`), so every call is still checked against the module's signatures.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """The module `name`, imported the first time one of its attributes is read."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r}, {state}>"


def lazy_module(name: str) -> Any:
    """A stand-in for the module `name` (typed Any: give the type checker the real import)."""
    return LazyModule(name)
