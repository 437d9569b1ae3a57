"""Search: autocomplete, the inverted index with its query language, ad targeting and job search
(Redis in Action §6.1, §7).
"""

from __future__ import annotations

from .ads import (
    AdIndex,
    Targeting,
    cpa_to_ecpm,
    cpc_to_ecpm,
)
from .autocomplete import (
    Autocomplete,
    RecentContacts,
    prefix_range,
)
from .index import (
    ParsedQuery,
    SearchIndex,
    SearchResult,
    parse_query,
    string_to_score,
    string_to_score_generic,
    tokenize,
    zadd_string,
)
from .jobs import (
    JobIndex,
    JobLevelIndex,
    JobYearsIndex,
)

__all__ = [
    "AdIndex",
    "Autocomplete",
    "JobIndex",
    "JobLevelIndex",
    "JobYearsIndex",
    "ParsedQuery",
    "RecentContacts",
    "SearchIndex",
    "SearchResult",
    "Targeting",
    "cpa_to_ecpm",
    "cpc_to_ecpm",
    "parse_query",
    "prefix_range",
    "string_to_score",
    "string_to_score_generic",
    "tokenize",
    "zadd_string",
]
