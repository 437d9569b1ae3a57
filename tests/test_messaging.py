"""The shared message envelope and JSON checks of the messaging patterns (no server needed)."""

from __future__ import annotations

import json

import pytest

from aiorpatterns.core.checks import check_count, encode_json
from aiorpatterns.messaging.envelope import Message, parse_envelope


def test_encode_json_is_compact_and_keeps_text() -> None:
    assert encode_json({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    assert json.loads(encode_json(2**80)) == 2**80


@pytest.mark.parametrize(
    ("value", "kind"),
    [(object(), TypeError), ({1, 2}, TypeError), (b"x", TypeError), (float("nan"), ValueError)],
)
def test_encode_json_refuses_what_is_not_json(value: object, kind: type[Exception]) -> None:
    with pytest.raises(kind, match="message"):
        encode_json(value)


def test_parse_envelope_from_bytes_or_text() -> None:
    raw = '{"id":7,"ts":1700000000123,"sender":"joe","message":{"n":[1,2]}}'
    expected = Message(id=7, sender="joe", sent_at=1700000000.123, message={"n": [1, 2]})
    assert parse_envelope(raw) == parse_envelope(raw.encode()) == expected


def test_check_count() -> None:
    assert check_count(3, "count") == 3
    assert check_count(0, "count", minimum=0) == 0
    for bad, kind in [(0, ValueError), (-1, ValueError), (True, TypeError), (1.0, TypeError)]:
        with pytest.raises(kind, match="count"):
            check_count(bad, "count")


def test_the_messaging_classes_are_importable_from_messaging() -> None:
    import aiorpatterns
    from aiorpatterns import messaging

    for name in ("Chats", "ChatBatch", "Inbox", "InboxMessage", "Fanout", "FanoutConsumer"):
        assert getattr(messaging, name) is getattr(aiorpatterns, name)
    with pytest.raises(AttributeError, match="Nope"):
        _ = messaging.Nope  # type: ignore[attr-defined]
