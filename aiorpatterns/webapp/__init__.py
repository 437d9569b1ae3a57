"""The web application of Redis in Action chapters 1-2 and 4: login sessions, carts, page and row
caches, article voting, and the marketplace (§1.3, §2, §4.4).
"""

from __future__ import annotations

from .articles import (
    Article,
    Articles,
    Vote,
)
from .caching import (
    PageCache,
    RowCache,
    RowCacheWorker,
    book_can_cache,
)
from .expiring import (
    ExpiringSessions,
)
from .market import (
    Listing,
    Market,
    Purchase,
)
from .sessions import (
    Sessions,
)

__all__ = [
    "Article",
    "Articles",
    "ExpiringSessions",
    "Listing",
    "Market",
    "PageCache",
    "Purchase",
    "RowCache",
    "RowCacheWorker",
    "Sessions",
    "Vote",
    "book_can_cache",
]
