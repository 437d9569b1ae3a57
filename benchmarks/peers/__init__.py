"""Rows for the peers a user would pick instead of aiorpatterns, one small module per peer.

Each module holds one workload factory for one table row, built on the peer's own public API
with its defaults (what a user gets from its README), so that adding a peer is one module here
and one ``Variant(...)`` line, with ``requires=`` naming the peer's class, in the table's module.
A peer that is not installed makes its row skip with a note; nothing here imports a peer at
module level.

Installed as users install them: from PyPI, in the ``peers`` dependency group of
``pyproject.toml``, which ``uv sync`` installs by default (``pip install coredis limits pottery
walrus py-redis-semaphore`` outside uv). Every pin below resolves beside redis-py 8.2, so all run
in the project's environment (versions as locked in ``uv.lock``):

- ``coredis`` 6.9 (:mod:`.coredis_lock`): ``coredis.patterns.lock.Lock``, on coredis' own
  client (``coredis.Redis`` / ``coredis.RedisCluster``), in the ``lock`` table;
- ``pottery`` 3.0.1 (:mod:`.pottery_lock`): ``pottery.AIORedlock`` with one master (a
  ``redis.asyncio.Redis``), in the ``lock`` table;
- ``py-redis-semaphore`` 0.2.0 (:mod:`.redis_semaphore`): ``redis_semaphore.Semaphore`` with
  its async API (``aacquire`` / ``arelease``), in the ``semaphore`` table;
- ``limits`` 5.8 (:mod:`.limits_ratelimit`): ``limits.aio.strategies``' fixed window, moving
  window and sliding window counter on its async Redis storage, in the ``ratelimit`` table;
  installed without extras and run on redis-py (its ``async-redis`` extra pins ``coredis<6``,
  which clashes with coredis 6.9 above; its ``redis`` extra pins ``redis<8``);
- ``walrus`` 0.9.8 (:mod:`.walrus_autocomplete`): ``walrus.Autocomplete`` on a
  ``walrus.Database`` (sync: one process per client), in the ``autocomplete`` table.

Peers are told apart from the book's ports (``benchmarks.baselines``): those are our ports of the
book's listings, these are other people's packages, run unchanged. Every key a peer row writes
starts with ``bench:`` (the runner deletes those between rows), through each peer's own
key-naming option.
"""

from __future__ import annotations
