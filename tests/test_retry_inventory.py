"""Every Lua script that writes has a run-twice test (DESIGN, "Retry safety").

A script writes if its source (includes inlined) calls a command the server flags ``write``
(``COMMAND INFO``), or calls a command named by a variable. A test proves a script with
``@pytest.mark.retry_safe("<script>", ...)``; the ``twice_client`` fixture checks that the named
scripts really ran twice there (see ``retrysafe.py``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from redis.asyncio import Redis
from retrysafe import script_names

from aiorpatterns.core.scripts import script

_CALL = re.compile(r"redis\.p?call\(\s*(?:'([A-Za-z]+)'|\"([A-Za-z]+)\"|([A-Za-z_][\w.\[\]]*))")


def _marked() -> set[str]:
    """Script names given to ``pytest.mark.retry_safe(...)`` anywhere in the tests."""
    names: set[str] = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "retry_safe"
            ):
                names |= {a.value for a in node.args if isinstance(a, ast.Constant)}
    return names


async def _writing(redis: Redis) -> dict[str, set[str]]:
    """Each writing script with the write commands it calls ("?" for a command in a variable)."""
    flags: dict[str, bool] = {}
    found: dict[str, set[str]] = {}
    for name in sorted(script_names().values()):
        writes: set[str] = set()
        for quoted, double, variable in _CALL.findall(script(name).source):
            command = (quoted or double).upper()
            if variable:
                writes.add("?")
                continue
            if command not in flags:
                info = await redis.execute_command("COMMAND", "INFO", command)
                entry = info.get(command.lower()) if isinstance(info, dict) else info[0]
                flags[command] = "write" in {
                    f.decode() if isinstance(f, bytes) else f for f in entry["flags"]
                }
            if flags[command]:
                writes.add(command)
        if writes:
            found[name] = writes
    return found


async def test_every_writing_script_has_a_run_twice_test(redis_standalone_client: Redis) -> None:
    writing = await _writing(redis_standalone_client)
    assert len(writing) > 40  # the parser found the scripts
    marked = _marked()
    missing = {name: sorted(w) for name, w in writing.items() if name not in marked}
    assert not missing, f"writing scripts without a retry_safe test: {missing}"


def test_marked_names_are_scripts() -> None:
    unknown = _marked() - set(script_names().values())
    assert not unknown, f"retry_safe names no script: {sorted(unknown)}"
