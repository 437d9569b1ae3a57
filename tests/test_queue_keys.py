"""Each task-queue script is passed exactly the keys it touches, and binds them by name.

A key a script is not passed would fail only on the path that touches it (a Lua global that
does not exist), so this reads the Lua: the keys the script's body and the shared functions it
calls use (``_queue_common.lua``, followed call by call) must be the keys its header names,
bound in that order on the line before ``-- @include queue_common``. The suite's queue tests
then run every script against real servers with exactly these keys.
"""

from __future__ import annotations

import re

import pytest

from aiorpatterns.core.scripts import script, scripts_by_name
from aiorpatterns.queues.taskqueue import _PARTS

KEY_VARS = frozenset(part.upper() for part in _PARTS)
QUEUE_SCRIPTS = sorted(
    name for name in scripts_by_name() if name.startswith("queue_") and name != "queue_common"
)
_FUNCTION = re.compile(r"^local function (\w+)\(.*?^end$", re.MULTILINE | re.DOTALL)
_NAME = re.compile(r"\b[A-Za-z_]\w*\b")
_BINDING = re.compile(r"^local ([A-Z_, \n]+?)\n?\s*= (KEYS\[\d+\](?:, KEYS\[\d+\])*)\n", re.M)


def _code(text: str) -> str:
    """``text`` without its comments and string literals (names inside them are not uses)."""
    text = re.sub(r"'[^'\n]*'", "''", text)
    return re.sub(r"--[^\n]*", "", text)


def _shared() -> tuple[dict[str, set[str]], set[str]]:
    """Names each shared function uses, and the names the shared top level uses."""
    source = "\n".join(scripts_by_name()[f"_{n}"].read_text() for n in ("queue_common", "once"))
    functions = {
        m.group(1): set(_NAME.findall(_code(m.group(0)))) for m in _FUNCTION.finditer(source)
    }
    top = set(_NAME.findall(_code(_FUNCTION.sub("", source))))
    return functions, top


def _touched(body: str) -> set[str]:
    """The queue keys a script body uses, through every shared function it calls."""
    functions, top = _shared()
    seen: set[str] = set()
    names = set(_NAME.findall(_code(body))) | top
    while pending := (names & functions.keys()) - seen:
        for fn in pending:
            seen.add(fn)
            names |= functions[fn]
    return names & KEY_VARS


def test_every_queue_script_is_covered() -> None:
    assert {"queue_put", "queue_claim", "queue_ack", "queue_settle", "queue_extend"} <= set(
        QUEUE_SCRIPTS
    )


@pytest.mark.parametrize("name", QUEUE_SCRIPTS)
def test_a_queue_script_is_passed_exactly_the_keys_it_touches(name: str) -> None:
    raw = scripts_by_name()[name].read_text()
    head, _, body = raw.partition("-- @include queue_common")
    declared = [key.upper() for key in script(name).key_names]
    assert declared, f"{name} names no keys in its header"
    assert set(declared) <= KEY_VARS
    binding = _BINDING.search(head)
    assert binding, f"{name} binds no keys before including queue_common"
    bound = [v.strip() for v in binding.group(1).split(",")]
    assert bound == declared, f"{name} binds {bound}, its header names {declared}"
    assert binding.group(2) == ", ".join(f"KEYS[{i}]" for i in range(1, len(bound) + 1))
    touched = _touched(body)
    assert touched == set(declared), (
        f"{name}: touches {sorted(touched)}, is passed {sorted(declared)}"
    )


def test_the_common_part_names_no_key_by_position() -> None:
    assert "KEYS[" not in _code(scripts_by_name()["_queue_common"].read_text())
