"""How values become text in Redis, and back: task payloads and results, cached values.

Redis in Action §6.4.1 queues ``json.dumps([...])`` and its worker ``json.loads`` it; §2.4
caches rows as JSON. A :class:`~aiorpatterns.TaskQueue` and a :class:`~aiorpatterns.Cache` do
the same by default (:class:`JsonSerializer`) and take any object with ``dumps(value) -> str``
and ``loads(text) -> value`` instead (their ``serializer=``). :class:`MsgspecJSON` is the faster
option (the same JSON text, encoded and decoded by msgspec: ``pip install msgspec``). Text
only, never pickle: what one process wrote must never make another run code it chose.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

from .checks import encode_json

__all__ = ["JsonSerializer", "MsgspecJSON", "Serializer"]


@runtime_checkable
class Serializer(Protocol):
    """Turns a payload or a result into text and back."""

    def dumps(self, value: Any) -> str: ...

    def loads(self, data: str) -> Any: ...


class JsonSerializer:
    """Compact JSON with the standard library; NaN and infinities refused (other readers do)."""

    def dumps(self, value: Any) -> str:
        return encode_json(value, "value")

    def loads(self, data: str) -> Any:
        return json.loads(data)

    def __repr__(self) -> str:
        return "JSON"


#: The default serializer (one is enough: it keeps no state): the book's JSON.
JSON = JsonSerializer()


class MsgspecJSON:
    """JSON encoded and decoded by msgspec (faster than the standard library; same text).

    Raises ImportError at construction if msgspec is not installed.
    """

    def __init__(self) -> None:
        import msgspec  # type: ignore[import-not-found, unused-ignore]

        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder()
        self._error = msgspec.EncodeError

    def dumps(self, value: Any) -> str:
        try:
            return str(self._encoder.encode(value).decode())
        except (self._error, TypeError) as exc:
            raise TypeError(f"value is not JSON-serialisable: {exc}") from None

    def loads(self, data: str) -> Any:
        return self._decoder.decode(data)

    def __repr__(self) -> str:
        return "JSON, by msgspec"


def check_serializer(value: object) -> Serializer:
    """Return ``value`` if it has callable ``dumps`` and ``loads``, else raise TypeError."""
    if not callable(getattr(value, "dumps", None)) or not callable(getattr(value, "loads", None)):
        raise TypeError(
            f"serializer must have dumps(value) -> str and loads(text), not {type(value).__name__}"
        )
    return value  # type: ignore[return-value]
