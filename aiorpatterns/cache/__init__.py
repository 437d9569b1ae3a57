"""Caching your own functions' results: :class:`Cache` and its ``@cached`` decorator.

- :mod:`~aiorpatterns.cache.store`: :class:`Cache` (get/set/delete/get_many/set_many, tags,
  soft TTLs, cache-aside with one computation per key across processes), :class:`CacheStats`;
- :mod:`~aiorpatterns.cache.decorator`: ``@cache.cached(key=..., tags=..., ttl=...)``;
- :mod:`~aiorpatterns.cache.flight`: the single flight (claim, wait, fill) that
  :class:`Cache` and :class:`~aiorpatterns.webapp.PageCache` share;
- :mod:`~aiorpatterns.cache.entries`: how an entry is stored (version, tag generations, kind).

Redis in Action §2.3-2.4 (page and row caching) is in :mod:`aiorpatterns.webapp.caching`.
"""

from .store import Cache, CachedError, CacheStats

__all__ = ["Cache", "CacheStats", "CachedError"]
