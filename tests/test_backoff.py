"""Test :class:`aiorpatterns.core.waiting.Backoff`, the pauses of every retrying loop."""

from __future__ import annotations

from aiorpatterns.core.waiting import Backoff


def test_pauses_double_up_to_the_most_and_reset_to_the_first() -> None:
    backoff = Backoff(0.1, 0.5)
    assert [backoff.take() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert backoff.pause == 0.5
    backoff.reset()
    assert backoff.take() == 0.1


async def test_sleep_takes_the_next_pause() -> None:
    backoff = Backoff(0.001, 0.004)
    await backoff.sleep()
    await backoff.sleep()
    assert backoff.pause == 0.004
