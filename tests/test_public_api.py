"""The flat public API: ``__all__`` is sorted, complete and importable.

Rule: every module of the package (``family.module``, and each family package itself) is public
unless its name starts with ``_`` or it is listed in :data:`INTERNAL` with the reason. A public
module declares its API in its own ``__all__``, and every name there is re-exported, as the same
object, by ``aiorpatterns``. Modules are found with :func:`pkgutil.walk_packages`, so a new module
must be exported or declared internal here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import aiorpatterns

INTERNAL = {
    "core.cancellation": "helpers the patterns share for cancel-safety, not an API",
    "core.checks": "the argument checks the patterns share, not an API",
    "coordination.leases": "the shared base of Lock and Semaphore; users hold those",
    "testing.pytest_plugin": "loaded by pytest as an entry point; importing it needs pytest",
    "core.waiting": "how the patterns wait in Redis (slices, socket timeouts), not an API",
    "core.wakeup": "the wake-up channels every waiting pattern shares, not an API",
    "queues.command": "the worker command line (``aiorpatterns worker``): run, not imported",
    "worker": "``python -m aiorpatterns.worker``, the worker command's other name: run only",
    "cache.decorator": "what ``Cache.cached`` returns; users call that method",
    "cache.entries": "how a cache entry is stored, not an API",
    "cache.flight": "the single flight ``Cache`` and ``PageCache`` share, not an API",
    "cache.near": "the near cache behind ``Cache(near=...)``, not an API of its own",
    "coordination.denials": "the memory behind ``RateLimiter(remember_denials=...)``, not an API",
}


def _modules() -> list[str]:
    found = pkgutil.walk_packages(aiorpatterns.__path__, prefix="aiorpatterns.")
    return sorted(m.name.removeprefix("aiorpatterns.") for m in found)


def _public_modules() -> list[ModuleType]:
    names = [n for n in _modules() if not n.split(".")[-1].startswith("_") and n not in INTERNAL]
    return [importlib.import_module(f"aiorpatterns.{n}") for n in names]


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_all_is_sorted_and_unique() -> None:
    assert list(aiorpatterns.__all__) == sorted(set(aiorpatterns.__all__), key=_isort_key)


def test_all_names_resolve() -> None:
    for name in aiorpatterns.__all__:
        assert getattr(aiorpatterns, name) is not None


def test_internal_modules_exist() -> None:
    """The exemption list names real modules (a stale entry would hide nothing, but misleads)."""
    assert set(INTERNAL) <= set(_modules())


@pytest.mark.parametrize("module", _public_modules(), ids=lambda m: m.__name__)
def test_public_module_is_re_exported(module: ModuleType) -> None:
    """Every name in a public module's ``__all__`` is the same object at the top level."""
    declared = getattr(module, "__all__", None)
    assert declared, f"{module.__name__} is public but has no __all__ (or add it to INTERNAL)"
    for name in declared:
        assert name in aiorpatterns.__all__, f"{module.__name__}.{name} is not exported"
        assert getattr(aiorpatterns, name) is getattr(module, name)


def test_every_public_class_and_function_at_the_top_is_exported() -> None:
    public = {
        name
        for name, value in vars(aiorpatterns).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__.startswith("aiorpatterns")
    }
    assert public <= set(aiorpatterns.__all__)


def test_script_and_servers_are_exported() -> None:
    """The Lua registry and the test servers are part of what users reach for."""
    assert {"script", "Script", "RedisServer", "ClusterServer"} <= set(aiorpatterns.__all__)
