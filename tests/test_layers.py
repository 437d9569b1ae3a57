"""The package's layers: lower layers never import higher ones, families keep their privates.

``core`` stands under everything; each family may import ``core``, its own modules, and the
families of a lower rank (:data:`RANK`), never a higher one; no module imports a name starting
with ``_`` from another family; each family's Lua scripts live in its own ``lua/`` folder, and
only ``aiorpatterns/__init__.py``, the command line's ``__main__.py`` (and ``worker.py``, the
worker command's ``python -m aiorpatterns.worker`` name) and the families sit at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aiorpatterns
from aiorpatterns.core.scripts import scripts_by_name

PACKAGE = Path(aiorpatterns.__file__).parent

#: A family may import from families of a lower rank (and from its own).
RANK = {
    "core": 0,
    "testing": 1,
    "coordination": 1,
    "queues": 2,
    "cache": 2,
    "messaging": 2,
    "search": 2,
    "memory": 2,
    "ops": 2,
    "webapp": 3,
    "social": 3,
    "scaling": 4,
}


def _families() -> list[str]:
    return sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(family imported, names) for every relative import of a family module."""
    family = path.parent.name
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = (node.module or "").split(".")
            target = family if node.level == 1 else parts[0]
            found.append((target, [a.name for a in node.names]))
    return found


def test_the_top_holds_only_the_families() -> None:
    top = sorted(p.name for p in PACKAGE.iterdir() if p.suffix == ".py")
    # __main__: ``python -m aiorpatterns``; worker: ``python -m aiorpatterns.worker``
    assert top == ["__init__.py", "__main__.py", "worker.py"]
    assert _families() == sorted(RANK)


@pytest.mark.parametrize("family", sorted(RANK))
def test_a_family_imports_only_downward_and_no_private_name(family: str) -> None:
    for path in sorted((PACKAGE / family).glob("*.py")):
        for target, names in _imports(path):
            if target == family:
                continue
            where = f"{family}/{path.name} imports {target}"
            assert RANK[target] < RANK[family], f"{where}: a family of the same or a higher rank"
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{where}'s private names {private}"


def test_every_script_lives_in_a_family_lua_folder() -> None:
    for name, file in scripts_by_name().items():
        family = Path(str(file)).parent.parent.name
        assert family in RANK, f"{name}.lua is outside the families"
