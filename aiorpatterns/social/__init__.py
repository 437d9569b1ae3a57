"""The social network of Redis in Action chapter 8: users, statuses, timelines, follows, fan-out
and the streaming API, over HTTP too (§8.1-§8.5).
"""

from __future__ import annotations

from .network import (
    Social,
    SocialUser,
    UserList,
)
from .streaming import (
    AllOfFilter,
    AnyOfFilter,
    FollowFilter,
    LocationFilter,
    NotFilter,
    SampleFilter,
    StatusEvent,
    StatusFilter,
    StatusStream,
    TrackFilter,
)
from .streaming_api import (
    StreamingAPI,
    create_filters,
    parse_identifier,
)
from .timelines import (
    StatusMessage,
)

__all__ = [
    "AllOfFilter",
    "AnyOfFilter",
    "FollowFilter",
    "LocationFilter",
    "NotFilter",
    "SampleFilter",
    "Social",
    "SocialUser",
    "StatusEvent",
    "StatusFilter",
    "StatusMessage",
    "StatusStream",
    "StreamingAPI",
    "TrackFilter",
    "UserList",
    "create_filters",
    "parse_identifier",
]
