"""A per-recipient inbox: single-recipient messaging that survives a reader's crash.

Redis in Action §6.5.1 replaces PUBLISH/SUBSCRIBE for one recipient with a LIST per recipient:
senders push, the recipient pops when it connects, and a sender can see how much is waiting.
The book gives no code; a plain pop loses the message if the reader dies before handling it, as
its task queue does (§6.4.1). :class:`Inbox` keeps the LIST and adds a processing list
(``LMOVE``), in Lua:

- :meth:`Inbox.receive` moves the oldest message out of the mailbox and files it under a lease
  in the same atomic step, then returns it; :meth:`Inbox.ack` deletes it once handled;
- a message whose lease runs out (its receiver crashed or hung) goes back to the head of the
  mailbox, taken back by the next receive step, so it is the next one delivered;
- a receive with nothing to do blocks on a wake-up list that every send pushes to, for at most
  :data:`~aiorpatterns.core.waiting.MAX_WAIT_SLICE` seconds or until the next lease ends, then
  re-checks: no polling, and a lost wake-up costs latency, never a message.

Delivery contract: **at least once, in send order**. A message is deleted only by an ``ack``; a
receiver that does not ack within ``visibility_timeout`` (or :meth:`~Inbox.extend` it) may see
it handed to another receive. Messages given back (released, or taken from a dead receiver) go
before newer ones. A receive cancelled at any await gives back a message the server had already
handed it (a shielded clean-up), or leaves a tombstone that refuses a receive still in flight.
``send``, ``ack``, ``release`` and ``extend`` are shielded: once called, they complete, so a
cancelled send is delivered exactly once. Every step is safe to run twice (a client retry after
a lost reply): a claim by a token that already holds a message answers that same message, and
send, ack, release and abandon keep a receipt under a token made per call (``_once.lua``).

Keys (one hash tag per recipient): ``<prefix>:inbox:{<recipient>}:messages`` (LIST of JSON
envelopes), ``…:held`` (HASH receive token -> envelope), ``…:leases`` (ZSET receive token ->
deadline), ``…:seq`` (STRING last id, never expires) and two short-lived ones, ``…:signal`` (wake
-up tokens) and ``…:abandoned`` (tombstones), which expire, as do the steps' receipts
``…:seq:<token>`` and ``…:leases:<token>``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.cancellation import best_effort, cancelling, honour_cancel, shielded
from ..core.checks import (
    AsyncRedis,
    check_client,
    check_keyspace,
    check_seconds,
    check_wait,
    encode_json,
    to_ms,
)
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script
from ..core.waiting import MAX_WAIT_SLICE, blocking_cap
from ..core.wakeup import signal_wait
from .envelope import Message, parse_envelope

__all__ = ["Inbox", "InboxCounts", "InboxMessage"]

#: The order of KEYS in every inbox script.
_PARTS = ("messages", "held", "leases", "signal", "abandoned", "seq")
#: Most expired leases taken back by one receive step.
_BATCH = 100
#: How long a tombstone refuses the receive of a caller that gave up (ms).
_TOMB_MS = 60_000


@dataclass(frozen=True, slots=True)
class InboxMessage(Message):
    """A message handed to one receive: ``ack`` it by ``deadline`` (server clock, Unix s)."""

    inbox: str
    deadline: float
    claim: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class InboxCounts:
    """How many messages wait in an inbox, and how many receivers hold without an ack."""

    waiting: int
    held: int

    @property
    def total(self) -> int:
        return self.waiting + self.held


class Inbox:
    """The inbox of ``recipient`` (Redis in Action §6.5.1); anyone may send, the recipient receives.

    ``visibility_timeout`` is how long a received message stays with its receiver without an
    ``ack`` before it is delivered again. Senders and the recipient may hold separate objects.
    """

    kind = "inbox"

    def __init__(
        self,
        redis: AsyncRedis,
        recipient: str,
        *,
        visibility_timeout: float = 30.0,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        check_name(recipient, "recipient")
        check_keyspace(keyspace)
        self.redis = check_client(redis)
        self.recipient = recipient
        self.keyspace = keyspace
        self.visibility_timeout = check_seconds(visibility_timeout, "visibility_timeout")
        self.keys = tuple(keyspace.key(self.kind, recipient, part) for part in _PARTS)

    def __repr__(self) -> str:
        return f"<Inbox {self.recipient!r}>"

    async def send(self, message: Any, *, sender: str) -> int:
        """Append ``message`` (any JSON value) from ``sender``; return its id (1, 2, 3, …).

        Wakes one blocked receiver. Shielded: once called, the message is sent exactly once.
        """
        sender_json = encode_json(check_name(sender, "sender"), "sender")
        message_json = encode_json(message)
        call = uuid.uuid4().hex  # made once: a retry of the step finds its receipt
        reply = await shielded(self._run("inbox_send", sender_json, message_json, call))
        return int(reply)

    # A timeout parameter, not asyncio.timeout(): cancelling a wait costs a clean-up round trip,
    # and timeout=0 means "one attempt", which no outer timeout can express.
    async def receive(self, *, timeout: float | None = None) -> InboxMessage | None:  # noqa: ASYNC109
        """Take the oldest message, waiting up to ``timeout`` seconds (None: forever).

        Returns None if nothing arrived in time; ``timeout=0`` makes one attempt. The message
        stays held under a lease until :meth:`ack`; unacknowledged, it is delivered again once
        the lease ends.
        """
        wait = None if timeout is None else check_wait(timeout)
        loop = asyncio.get_running_loop()
        deadline = None if wait is None else loop.time() + wait
        token = uuid.uuid4().hex
        lease_ms = to_ms(self.visibility_timeout)
        cap = blocking_cap(self.redis)
        current, cancels = cancelling()
        got: InboxMessage | None = None
        try:
            while True:
                honour_cancel(current, cancels)  # every turn: a swallowed cancel would loop on
                reply = await self._run("inbox_claim", token, lease_ms, _BATCH)
                got, hint = self._claimed(reply, token)
                if got is not None:
                    break
                pause = _pause(deadline, hint, cap)
                if pause is None:
                    break
                if pause >= 0.001:  # one blocked connection for all (core/wakeup.py)
                    await signal_wait(self.redis, self.keys[3], pause)
            honour_cancel(current, cancels)
        except BaseException:
            # By token, whatever the claim's reply said (or if it never came): the step may
            # have run on the server and handed this token a message.
            call = uuid.uuid4().hex
            await best_effort(lambda: self._run("inbox_settle", token, "abandon", _TOMB_MS, call))
            raise
        return got

    async def ack(self, message: InboxMessage) -> bool:
        """Delete a handled message; True if it was still this receiver's.

        False means its lease ran out and it was given back (it will be, or was, delivered
        again). A late ack before it is given back still deletes it. Shielded.
        """
        return await self._settle(message, "ack") == 1

    async def release(self, message: InboxMessage) -> bool:
        """Give a message back unhandled, to the head of the inbox; True if ours. Shielded."""
        return await self._settle(message, "release") == 1

    async def extend(self, message: InboxMessage, seconds: float | None = None) -> float | None:
        """Push a held message's lease to ``seconds`` from now (default: the visibility timeout).

        Returns the new deadline (server clock, Unix seconds), or None if it is no longer ours.
        """
        wait = self.visibility_timeout if seconds is None else check_seconds(seconds, "seconds")
        deadline = await self._settle(message, "extend", to_ms(wait or 0.0))
        return deadline / 1000 if deadline else None

    async def counts(self) -> InboxCounts:
        """How many messages wait, and how many are held by receivers (for senders to check)."""
        waiting, held = await asyncio.gather(
            self.redis.llen(self.keys[0]), self.redis.hlen(self.keys[1])
        )
        return InboxCounts(int(waiting), int(held))

    async def _settle(self, message: object, mode: str, ms: int = 0) -> int:
        if not isinstance(message, InboxMessage):
            raise TypeError(
                f"message must be an InboxMessage from receive(), not {type(message).__name__}"
            )
        if message.inbox != self.recipient:
            raise ValueError(
                f"message {message.id} belongs to inbox {message.inbox!r}, not {self.recipient!r}"
            )
        call = uuid.uuid4().hex  # made once: a retry of the step finds its receipt
        return int(await shielded(self._run("inbox_settle", message.claim, mode, ms, call)))

    async def _run(self, name: str, *args: object) -> Any:
        return await script(name)(self.redis, self.keys, args)

    def _claimed(self, reply: Sequence[Any], token: str) -> tuple[InboxMessage | None, int]:
        """Read a claim step's reply: the message handed out, or None and the wait hint (ms).

        The first element says which shape the reply has (``inbox_claim.lua``): ``1`` a message
        ``{1, deadline, envelope}``, ``0`` none ``{0, wait_ms}``, ``-2`` a refused token.
        """
        kind = int(reply[0])
        if kind == 1 and len(reply) == 3:
            return self._message(reply, token), 0
        if kind == 0 and len(reply) == 2:
            return None, int(reply[1])
        if kind == -2:  # a token is fresh per call: only a bug could see it refused
            raise RuntimeError(f"inbox {self.recipient!r}: a live receive was refused")
        raise RuntimeError(f"inbox {self.recipient!r}: unexpected claim reply {reply!r}")

    def _message(self, reply: Sequence[Any], token: str) -> InboxMessage:
        base = parse_envelope(reply[2])
        return InboxMessage(
            id=base.id,
            sender=base.sender,
            sent_at=base.sent_at,
            message=base.message,
            inbox=self.recipient,
            deadline=int(reply[1]) / 1000,
            claim=token,
        )


def _pause(deadline: float | None, hint_ms: int, cap: float | None) -> float | None:
    """How long to block before re-checking (0: at once); None once the deadline passed."""
    if hint_ms == 0:
        pause = 0.0
    elif hint_ms < 0:
        pause = MAX_WAIT_SLICE
    else:  # rounded up, so the re-check finds the lease ended
        pause = min(MAX_WAIT_SLICE, hint_ms / 1000 + 0.001)
    if cap is not None:
        pause = min(pause, cap)
    if deadline is not None:
        left = deadline - asyncio.get_running_loop().time()
        if left < 0.001:
            return None
        pause = min(pause, left)
    return pause
