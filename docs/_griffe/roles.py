"""A Griffe extension for the docs build: turn the package's reST roles into Markdown.

The docstrings use Sphinx roles (:class:`~aiorpatterns.Lock`, :meth:`acquire`). Before
mkdocstrings renders a docstring, each role becomes inline code, and a link to the API reference
when it names something a reference page renders (a name in a family's ``__all__``), so
``mkdocs build --strict`` never meets an unresolved cross-reference.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import griffe

FAMILIES = (
    "core",
    "coordination",
    "queues",
    "messaging",
    "webapp",
    "search",
    "social",
    "ops",
    "memory",
    "scaling",
    "testing",
)
ROLE = re.compile(r":(?:py:)?(class|func|meth|attr|data|exc|mod|obj):`(~?)([^`<>]+)`")


def _targets() -> dict[str, str]:
    """Map each public name to the identifier its reference page renders it under."""
    targets: dict[str, str] = {}
    for family in FAMILIES:
        module = importlib.import_module(f"aiorpatterns.{family}")
        for name in module.__all__:
            targets.setdefault(name, f"aiorpatterns.{family}.{name}")
        targets[f"aiorpatterns.{family}"] = f"aiorpatterns.{family}"
    return targets


class ReSTRoles(griffe.Extension):
    """Rewrite :role:`target` into Markdown code, linked where the target is rendered."""

    def __init__(self) -> None:
        super().__init__()
        self._targets = _targets()

    def _replace(self, match: re.Match[str]) -> str:
        role, tilde, path = match.group(1), match.group(2), match.group(3).strip()
        shown = path.rsplit(".", 1)[-1] if tilde else path
        if role in ("func", "meth"):
            shown += "()"
        parts = path.split(".")
        target = self._targets.get(path) if role == "mod" else None
        if role in ("class", "func", "exc", "obj") and (
            len(parts) == 1 or parts[0] == "aiorpatterns"
        ):
            target = self._targets.get(parts[-1])
        if target is None:
            return f"`{shown}`"
        return f"[`{shown}`][{target}]"

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(self._replace, obj.docstring.value)
