"""The flat public API: ``__all__`` is sorted, complete and importable."""

from __future__ import annotations

import inspect

import aiorpatterns


def test_all_is_sorted_and_unique() -> None:
    assert list(aiorpatterns.__all__) == sorted(set(aiorpatterns.__all__))


def test_all_names_resolve() -> None:
    for name in aiorpatterns.__all__:
        assert getattr(aiorpatterns, name) is not None


def test_every_public_class_and_function_is_exported() -> None:
    exported = set(aiorpatterns.__all__)
    public = {
        name
        for name, value in vars(aiorpatterns).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__.startswith("aiorpatterns")
    }
    assert public <= exported
    for module in aiorpatterns.PUBLIC_MODULES:
        for name in getattr(module, "__all__", ()):
            assert name in exported, (
                f"{module.__name__}.{name} is missing from aiorpatterns.__all__"
            )
