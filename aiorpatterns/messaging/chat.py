"""Group chats that members pull from: multi-recipient messaging without PUBLISH/SUBSCRIBE.

Redis in Action §6.5.2 keeps a chat in Redis so that a member who is not connected misses
nothing: the messages in a ZSET scored by id, the members in a ZSET scored by the last id each
has seen, a ``seen:<user>`` ZSET per user, and messages every member has seen are trimmed. Its
``send_message`` takes a lock without a TTL only so that ids are inserted in order, and its
``fetch_pending_messages`` moves the chat's record of the member before the user's own, in
separate steps, then reads and trims in others: a crash in between, or two
fetches at once, duplicates messages or trims some the member has not read. :class:`Chats`
keeps the book's layout and fixes that:

- a message id comes from the same Lua step as the insert: no lock, and no gap a reader could
  pass over before a lower id lands;
- a member's position lives in the chat's members ZSET only (the chat's hash tag), so every step
  on a chat is one atomic script, also on Redis Cluster; the per-user set of chats is only an
  index, read by :meth:`Chats.fetch_pending`, which then fetches every chat concurrently;
- fetching is two-phase. :meth:`~Chats.fetch` hands out the next batch after the member's
  position and *claims* it for ``claim_timeout`` seconds without moving the position;
  :meth:`~Chats.ack` moves the position past the batch and trims what every member has
  acknowledged. A member has at most one batch out at a time, so two tasks fetching for one
  member never receive the same message, and batches come in id order.

Delivery contract, per member and chat: **every message in id order, at least once**. A batch
that is not acknowledged within ``claim_timeout`` (its reader crashed) is handed out again, from
the same position, to the member's next fetch; a reader that acknowledges in time receives each
message exactly once. Nothing a member has not acknowledged is ever trimmed. A fetch cancelled
at any await gives its batch back (a shielded clean-up), or leaves a tombstone that refuses a
fetch still in flight; every call that changes a chat (create, send, join, leave, ack, release)
is shielded: once called it completes, so a cancelled send is sent exactly once. Every step is
safe to run twice (a client retry after a lost reply): a fetch by a token whose batch is out
answers that same batch, and create, send, join, leave and settle keep a receipt under a token
made per call (``_once.lua``), so a retried create never mistakes its own chat for a taken id.

Keys: ``<prefix>:chat:{<chat>}:members`` (ZSET member -> position), ``…:claims`` (HASH
member -> the batch out), ``…:msgs`` (ZSET JSON envelope -> id), ``…:seq`` (STRING last id),
``…:abandoned`` (short-lived tombstones), ``…:signal`` (STREAM of one entry whose id is the
newest message's: a fetch with nothing pending waits on it, the fetches of one client
sharing one ``XREAD BLOCK``, see ``core/wakeup.py``); per member
``<prefix>:chats:{<member>}`` (SET of chat ids, the index); ``<prefix>:chatid:{seq}`` (the
counter of generated chat ids); receipts ``…:members:<token>``, ``…:seq:<token>`` and
``…:claims:<token>`` expire. On a cluster a chat lives on one node and each member's index on
its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import TimeoutError as RedisTimeoutError

from ..core.cancellation import best_effort, cancelling, honour_cancel, shielded
from ..core.checks import (
    AsyncRedis,
    check_client,
    check_count,
    check_keyspace,
    check_seconds,
    check_wait,
    encode_json,
    text,
    to_ms,
)
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script
from ..core.waiting import block_ms, blocking_cap
from ..core.wakeup import stream_wait
from .envelope import Message, parse_envelope

__all__ = ["ChatBatch", "Chats"]

#: The order of KEYS in every chat script.
_PARTS = ("members", "claims", "msgs", "seq", "abandoned", "signal")
#: How long a tombstone refuses the fetch of a caller that gave up (ms).
_TOMB_MS = 60_000


@dataclass(frozen=True, slots=True)
class ChatBatch:
    """The messages one fetch handed a member, in id order; iterate it, then ``ack`` it.

    ``after`` is the member's position when it was fetched (every message up to it was
    acknowledged). ``deadline`` is when the claim ends if it is not acknowledged (server clock,
    Unix seconds); ``busy`` is True when nothing was handed out because another fetch of the same
    member holds a batch.
    """

    chat: str
    member: str
    messages: tuple[Message, ...]
    after: int = 0
    deadline: float | None = None
    busy: bool = False
    claim: str | None = field(default=None, repr=False)

    def __iter__(self) -> Iterator[Message]:
        return iter(self.messages)

    def __len__(self) -> int:
        return len(self.messages)

    @property
    def last_id(self) -> int:
        """The id of the batch's last message, or ``after`` for an empty batch."""
        return self.messages[-1].id if self.messages else self.after


class Chats:
    """Group chats stored in Redis, pulled by their members (Redis in Action §6.5.2).

    ``claim_timeout`` is how long a fetched batch waits for its ack before the member's next
    fetch is handed the same messages again. Chat ids and member names are non-empty strings
    without ``}``. The client is the caller's and is never closed here.
    """

    kind = "chat"
    index_kind = "chats"

    def __init__(
        self,
        redis: AsyncRedis,
        *,
        claim_timeout: float = 30.0,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        check_keyspace(keyspace)
        self.redis = check_client(redis)
        self.keyspace = keyspace
        self.claim_timeout = check_seconds(claim_timeout, "claim_timeout")
        self._id_key = keyspace.key("chatid", "seq")

    def __repr__(self) -> str:
        return f"<Chats prefix={self.keyspace.prefix!r}>"

    def keys(self, chat_id: str) -> tuple[str, ...]:
        """The keys of one chat, in the order its scripts take them."""
        return tuple(
            self.keyspace.key(self.kind, check_name(chat_id, "chat_id"), p) for p in _PARTS
        )

    def index_key(self, member: str) -> str:
        """The key of the set of chats ``member`` belongs to (only an index)."""
        return self.keyspace.key(self.index_kind, check_name(member, "member"))

    # -- changing chats ----------------------------------------------------------------------

    async def create(
        self,
        sender: str,
        recipients: Iterable[str],
        message: Any,
        *,
        chat_id: str | None = None,
    ) -> str:
        """Create a chat of ``sender`` and ``recipients`` with its first message; return its id.

        The chat and its first message appear in one step, and every member, the sender too,
        receives the first message (Redis in Action §6.5.2 ``create_chat``). Without ``chat_id``
        a new numeric id is generated; a ``chat_id`` that exists already raises ``ValueError``.
        Shielded: once called, it completes.
        """
        check_name(sender, "sender")
        if isinstance(recipients, str) or not isinstance(recipients, Iterable):
            raise TypeError("recipients must be an iterable of names, not a str")
        members = [sender]
        for name in recipients:
            check_name(name, "recipient")
            if name not in members:
                members.append(name)
        if not any(m != sender for m in members):
            raise ValueError("recipients must name at least one member besides the sender")
        if chat_id is not None:
            check_name(chat_id, "chat_id")
        sender_json, message_json = encode_json(sender, "sender"), encode_json(message)
        return await shielded(self._create(members, sender_json, message_json, chat_id))

    async def _create(
        self, members: list[str], sender_json: str, message_json: str, chat_id: str | None
    ) -> str:
        # One token for the whole call: a retried chat_create finds its receipt and answers 1
        # (without it, the retry's "exists" would send a generated id on to the next one).
        token = uuid.uuid4().hex
        while True:
            cid = chat_id if chat_id is not None else str(await self.redis.incr(self._id_key))
            # The index first: an entry for a chat that was never created is ignored by
            # fetch_pending, while a member missing from the index would never be fetched for.
            added = await self._index("add", cid, members)
            first = int(
                await script("chat_create")(
                    self.redis, self.keys(cid), [sender_json, message_json, token, *members]
                )
            )
            if first:
                await self._sync_index(cid, members, [True] * len(members))
                return cid
            # Only the entries this call added: the existing chat's members keep theirs.
            fresh = [m for m, new in zip(members, added, strict=True) if new]
            await self._index("remove", cid, fresh)
            if chat_id is not None:
                raise ValueError(f"chat {chat_id!r} already exists")
            # A generated id that someone had chosen by hand: take the next one.

    async def send(self, chat_id: str, sender: str, message: Any) -> int:
        """Send ``message`` (any JSON value) to a chat; return its id.

        Ids are 1, 2, 3, … per chat, assigned in the step that stores the message (Redis in
        Action §6.5.2 ``send_message``, with no lock). ``sender`` is a label, as in the book: it
        need not be a member. Raises ``LookupError`` if the chat does not exist. Shielded: once
        called, the message is sent exactly once.
        """
        keys = self.keys(chat_id)
        sender_json = encode_json(check_name(sender, "sender"), "sender")
        message_json = encode_json(message)
        args = [sender_json, message_json, uuid.uuid4().hex]  # a retry finds its receipt
        mid = int(await shielded(script("chat_send")(self.redis, keys, args)))
        if not mid:
            raise LookupError(f"chat {chat_id!r} does not exist")
        return mid

    async def join(self, chat_id: str, member: str) -> bool:
        """Add ``member`` to a chat; they receive the messages sent from now on.

        True if they joined now, False if they were a member already. Raises ``LookupError`` if
        the chat does not exist (Redis in Action §6.5.2 ``join_chat``). Shielded.
        """
        keys = self.keys(chat_id)
        self.index_key(member)
        return await shielded(self._join(chat_id, member, keys))

    async def _join(self, chat_id: str, member: str, keys: Sequence[str]) -> bool:
        (added,) = await self._index("add", chat_id, [member])
        joined = int(await script("chat_join")(self.redis, keys, [member, uuid.uuid4().hex]))
        if joined < 0:
            if added:
                await self._index("remove", chat_id, [member])
            raise LookupError(f"chat {chat_id!r} does not exist")
        await self._sync_index(chat_id, [member], [True])
        return joined == 1

    async def leave(self, chat_id: str, member: str) -> bool:
        """Remove ``member`` from a chat; True if they were a member.

        Messages only they had not acknowledged are trimmed at once, and the last member to
        leave deletes the chat (Redis in Action §6.5.2 ``leave_chat``, in one atomic step).
        Also drops the chat from the member's index if it was stale. Shielded.
        """
        keys = self.keys(chat_id)
        self.index_key(member)
        return await shielded(self._leave(chat_id, member, keys))

    async def _leave(self, chat_id: str, member: str, keys: Sequence[str]) -> bool:
        left = int(await script("chat_leave")(self.redis, keys, [member, uuid.uuid4().hex]))
        # After the chat's own step: a crash in between leaves a stale index entry, harmless.
        await self._sync_index(chat_id, [member], [False])
        return left > 0

    async def _sync_index(self, chat_id: str, members: Sequence[str], inside: list[bool]) -> None:
        """Write each member's index entry as ``inside`` says (their membership as this call's
        chat step left it), then re-read the chat's members and repeat for any that changed.

        The index lives on other keys (other nodes) than the chat, so a join and a leave of one
        member running at once could each write it after the other's chat step and leave it
        wrong for good. Every call writes *after* its chat step and stops only once a read that
        follows its last write agrees, so the last write of all matches the chat.
        """
        key = self.keys(chat_id)[0]
        while members:
            adds = [m for m, i in zip(members, inside, strict=True) if i]
            drops = [m for m, i in zip(members, inside, strict=True) if not i]
            await asyncio.gather(
                self._index("add", chat_id, adds), self._index("remove", chat_id, drops)
            )
            now = [score is not None for score in await self.redis.zmscore(key, list(members))]
            changed = [(m, n) for m, i, n in zip(members, inside, now, strict=True) if i != n]
            members, inside = [m for m, _ in changed], [n for _, n in changed]

    async def _index(self, how: str, chat_id: str, members: Sequence[str]) -> list[bool]:
        """Add ``chat_id`` to (or remove it from) each member's index; which ones changed."""
        # One command per member (each index key is in its member's own hash tag), pipelined:
        # a chat of a thousand members is one write per node, not a thousand connections.
        if not members:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for m in members:
                if how == "add":
                    pipe.sadd(self.index_key(m), chat_id)
                else:
                    pipe.srem(self.index_key(m), chat_id)
            return [bool(n) for n in await pipe.execute()]

    # -- fetching ----------------------------------------------------------------------------

    async def fetch(
        self,
        chat_id: str,
        member: str,
        *,
        count: int = 100,
        timeout: float | None = 0,  # noqa: ASYNC109
    ) -> ChatBatch:
        """Claim the next ``count`` messages after ``member``'s position; ack them when done.

        The position does not move until :meth:`ack`: a reader that dies first leaves the
        batch to be handed out again after ``claim_timeout``. With nothing pending, the fetch
        waits up to ``timeout`` seconds for a message (``0``, the default: not at all; ``None``:
        until one arrives), woken by the send itself, not by polling. The batch is empty if
        nothing arrived in time, and empty but ``busy`` at once if another fetch of this member
        holds a batch. Raises ``LookupError`` if ``member`` is not in the chat. Redis in Action
        §6.5.2 ``fetch_pending_messages``, for one chat.
        """
        keys = self.keys(chat_id)
        check_name(member, "member")
        count = check_count(count, "count")
        wait = None if timeout is None else check_wait(timeout)
        deadline = None if wait is None else asyncio.get_running_loop().time() + wait
        cap = blocking_cap(self.redis)
        current, cancels = cancelling()
        while True:
            honour_cancel(current, cancels)  # every turn: a swallowed cancel would loop on
            batch = await self._fetch(keys, chat_id, member, count)
            if batch is None:
                raise LookupError(f"{member!r} is not a member of chat {chat_id!r}")
            block = block_ms(deadline, cap)
            if batch.messages or batch.busy or block is None:
                return batch
            # Sent after this fetch: the signal's entry id is above our position. The fetches
            # of this client share one XREAD (core/wakeup.py); a wait cut short
            # (socket_timeout) or a chat deleted meanwhile is caught by the next fetch.
            with contextlib.suppress(RedisTimeoutError):
                await stream_wait(self.redis, keys[5], batch.after, block / 1000)

    async def fetch_pending(self, member: str, *, count: int = 100) -> list[ChatBatch]:
        """Claim the pending messages of ``member`` in every chat they belong to.

        Returns the non-empty batches, and an empty ``busy`` batch for each chat where another
        fetch of this member holds a batch, ordered by chat id; ack each non-empty one. The
        chats are fetched concurrently, one atomic step each (on a cluster each on its own
        node). If this call is cancelled or fails, every batch it had claimed is given back.
        Redis in Action §6.5.2
        ``fetch_pending_messages``.
        """
        index = self.index_key(member)
        count = check_count(count, "count")
        chats = sorted(text(c) for c in await self.redis.smembers(index))
        steps = [asyncio.ensure_future(self._fetch(self.keys(c), c, member, count)) for c in chats]
        try:
            batches = await asyncio.gather(*steps)
        except BaseException:
            await best_effort(lambda: self._give_back(steps))
            raise
        # A chat in the index but not in the chat: a join or leave in progress, or one that
        # crashed half-way (see _create); the index is only a hint.
        return [b for b in batches if b is not None and (b.messages or b.busy)]

    async def _give_back(self, steps: Sequence[asyncio.Future[ChatBatch | None]]) -> None:
        if not steps:
            return
        for step in steps:
            step.cancel()
        await asyncio.wait(steps)
        claimed = [
            s.result()
            for s in steps
            if not s.cancelled() and s.exception() is None and s.result() is not None
        ]
        await asyncio.gather(*(self.release(b) for b in claimed if b is not None and b.claim))

    async def _fetch(
        self, keys: Sequence[str], chat_id: str, member: str, count: int
    ) -> ChatBatch | None:
        count = check_count(count, "count")
        token = uuid.uuid4().hex
        args = [member, token, count, to_ms(self.claim_timeout)]
        current, cancels = cancelling()
        try:
            reply = await script("chat_fetch")(self.redis, keys, args)
            batch = self._batch(reply, chat_id, member, token)
            honour_cancel(current, cancels)
        except BaseException:
            # By token, whatever the reply said (or if it never came): the step may have run.
            call = uuid.uuid4().hex  # one for both tries: the second finds the first's receipt
            await best_effort(lambda: self._settle(keys, member, token, "abandon", call=call))
            raise
        return batch

    @staticmethod
    def _batch(reply: Sequence[Any], chat_id: str, member: str, token: str) -> ChatBatch | None:
        code = int(reply[0])
        if code == 1:
            messages = tuple(parse_envelope(reply[i]) for i in range(4, len(reply), 2))
            return ChatBatch(
                chat=chat_id,
                member=member,
                messages=messages,
                after=int(reply[3]),
                deadline=int(reply[2]) / 1000,
                claim=token,
            )
        if code == 0:
            return ChatBatch(chat=chat_id, member=member, messages=(), after=int(reply[2]))
        if code == -2:
            return ChatBatch(chat=chat_id, member=member, messages=(), busy=True)
        if code == -3:  # a token is fresh per call: only a bug could see it refused
            raise RuntimeError(f"chat {chat_id!r}: a live fetch token was refused")
        return None

    async def ack(self, batch: ChatBatch, *, through: int | None = None) -> bool:
        """Acknowledge a batch: move the member's position past it and trim the chat.

        With ``through`` (a message id in the batch) only the messages up to it are
        acknowledged and the rest is given back. True if the batch was still this fetch's;
        False if its claim had run out and the messages went to another fetch (they will be, or
        were, received again). An empty batch is acknowledged trivially. Shielded.
        """
        self._check_batch(batch)
        last = batch.last_id
        if through is not None:
            check_count(through, "through", minimum=0)
            if batch.messages and not batch.messages[0].id <= through <= last:
                raise ValueError(
                    f"through={through} is not in the batch ({batch.messages[0].id}..{last})"
                )
            last = through
        if batch.claim is None:
            return True
        keys = self.keys(batch.chat)
        return bool(
            await shielded(self._settle(keys, batch.member, batch.claim, "ack", last, call=None))
        )

    async def release(self, batch: ChatBatch) -> bool:
        """Give a batch back unacknowledged: the member's next fetch gets it again. Shielded."""
        self._check_batch(batch)
        if batch.claim is None:
            return False
        keys = self.keys(batch.chat)
        return bool(
            await shielded(self._settle(keys, batch.member, batch.claim, "release", call=None))
        )

    async def _settle(
        self,
        keys: Sequence[str],
        member: str,
        token: str,
        mode: str,
        through: int = 0,
        *,
        call: str | None,
    ) -> int:
        # ``call`` names this settle for its receipt: made here unless the caller tries twice.
        args = [member, token, mode, through, _TOMB_MS, call or uuid.uuid4().hex]
        return int(await script("chat_settle")(self.redis, keys, args))

    @staticmethod
    def _check_batch(batch: object) -> None:
        if not isinstance(batch, ChatBatch):
            raise TypeError(f"batch must be a ChatBatch from fetch(), not {type(batch).__name__}")

    # -- reading state -----------------------------------------------------------------------

    async def members(self, chat_id: str) -> dict[str, int]:
        """Return each member's position: the id of the last message they acknowledged."""
        pairs: Any = await self.redis.zrange(self.keys(chat_id)[0], 0, -1, withscores=True)
        return {text(m): int(score) for m, score in pairs}

    async def chats_of(self, member: str) -> list[str]:
        """Return the ids of the chats ``member`` belongs to (from the index), sorted."""
        return sorted(text(c) for c in await self.redis.smembers(self.index_key(member)))

    async def exists(self, chat_id: str) -> bool:
        """True if the chat exists (it has at least one member)."""
        return bool(await self.redis.exists(self.keys(chat_id)[0]))

    async def last_id(self, chat_id: str) -> int:
        """Return the id of the last message sent to the chat (0 if none or no chat)."""
        value = await self.redis.get(self.keys(chat_id)[3])
        return 0 if value is None else int(value)
