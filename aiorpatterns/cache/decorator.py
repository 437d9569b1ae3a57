"""``@cache.cached(...)``: cache an async function's results by its arguments.

The decorated function is called only on a miss, by one caller across every process (see
:mod:`aiorpatterns.cache.flight`); its result is cached for the policy's TTL. Its key is
``key`` formatted with the call's arguments by name (``key="user:{user_id}"``), or by default
the function's qualified name and a digest of its arguments as JSON (``self`` and ``cls`` left
out, so a method caches per arguments, not per instance: use ``key`` to tell instances apart).
Tags are templates formatted the same way (``tags=("user:{user_id}",)``). Everything is checked
when the decorator is made: a bad TTL or key template fails at import, not at the first call.
Redis in Action §2.4 caches rows by id; this is that, for any function.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import string
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ..core.checks import encode_json

if TYPE_CHECKING:
    from .store import Cache, Policy

__all__ = ["cached"]

P = ParamSpec("P")
R = TypeVar("R")

_SELF = ("self", "cls")


def _fields(template: str, what: str) -> set[str]:
    """The argument names ``template`` refers to (``{user_id}``, ``{user.id}``)."""
    if not isinstance(template, str) or not template:
        raise TypeError(f"{what} must be a non-empty str, not {template!r}")
    names = set()
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None:
            name = field.split(".")[0].split("[")[0]
            if not name or name.isdigit():
                raise ValueError(f"{what} {template!r} must name arguments: {{{field}}}")
            names.add(name)
    return names


def _key_maker(
    func: Callable[..., Any], signature: inspect.Signature, key: str | None
) -> Callable[[dict[str, Any]], str]:
    """Build a call's cache key from its bound arguments."""
    if key is not None:
        unknown = _fields(key, "key") - signature.parameters.keys()
        if unknown:
            raise ValueError(f"key {key!r} names {sorted(unknown)}, not arguments of {func}")
        return lambda arguments: key.format(**arguments)
    prefix = f"{func.__module__}.{func.__qualname__}"

    def digest(arguments: dict[str, Any]) -> str:
        values = {k: v for k, v in arguments.items() if k not in _SELF}
        try:
            encoded = encode_json(values, "arguments")
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{exc}; give @cached a key= template for {prefix}") from None
        return f"{prefix}:{hashlib.sha256(encoded.encode()).hexdigest()[:32]}"

    return digest


def _binder(
    signature: inspect.Signature,
) -> Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]]:
    """A call's arguments by name, defaults included: ``Signature.bind`` and
    ``apply_defaults``, without their cost on the common call (positional or keyword
    arguments of a function with neither ``*args`` nor ``**kwargs`` nor keyword-only
    parameters), which this maps directly; any other call goes through ``bind``."""
    params = signature.parameters.values()
    plain = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
    names = tuple(signature.parameters)
    known = frozenset(names)
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}

    def slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        call = signature.bind(*args, **kwargs)
        call.apply_defaults()
        return dict(call.arguments)

    def fast(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if len(args) > len(names):
            return slow(args, kwargs)
        arguments = dict(zip(names, args, strict=False))  # (fewer args than names: defaults)
        if kwargs:
            if not kwargs.keys().isdisjoint(arguments) or not kwargs.keys() <= known:
                return slow(args, kwargs)  # raises TypeError as the call would
            arguments.update(kwargs)
        if len(arguments) < len(names):
            for name in names:
                if name not in arguments:
                    if name not in defaults:
                        return slow(args, kwargs)
                    arguments[name] = defaults[name]
        return arguments

    return fast if plain else slow


def cached(
    cache: Cache,
    policy: Policy,
    *,
    key: str | None = None,
    tags: Iterable[str] = (),
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """The decorator :meth:`Cache.cached` returns (see the module docstring)."""
    if isinstance(tags, str | bytes):
        raise TypeError("tags must be a collection of templates, not a single str")
    templates = tuple(dict.fromkeys(tags))

    def decorate(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        if not inspect.iscoroutinefunction(func):
            raise TypeError(f"@cached decorates async functions, not {func!r}")
        signature = inspect.signature(func)
        make_key = _key_maker(func, signature, key)
        for template in templates:
            unknown = _fields(template, "tag") - signature.parameters.keys()
            if unknown:
                raise ValueError(f"tag {template!r} names {sorted(unknown)}, not arguments")

        arguments_of = _binder(signature)

        def bound(*args: Any, **kwargs: Any) -> tuple[str, tuple[str, ...]]:
            arguments = arguments_of(args, kwargs)
            return make_key(arguments), tuple(t.format(**arguments) for t in templates)

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            name, call_tags = bound(*args, **kwargs)
            return await cache.get_or_compute(
                name, lambda: func(*args, **kwargs), tags=call_tags, policy=policy
            )

        async def invalidate(*args: Any, **kwargs: Any) -> bool:
            """Drop the entry these arguments would read; whether there was one."""
            return await cache.delete(bound(*args, **kwargs)[0])

        wrapper.invalidate = invalidate  # type: ignore[attr-defined]
        wrapper.key_for = lambda *a, **k: bound(*a, **k)[0]  # type: ignore[attr-defined]
        wrapper.cache = cache  # type: ignore[attr-defined]
        return wrapper

    return decorate
