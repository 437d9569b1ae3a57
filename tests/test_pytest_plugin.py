"""The pytest plugin users get: real servers, empty keyspaces, external URLs, Docker."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from redis.asyncio.cluster import RedisCluster

from aiorpatterns.testing.pytest_plugin import Endpoint
from aiorpatterns.testing.server import RedisServer

pytest_plugins = ["pytester"]


async def test_each_test_starts_on_an_empty_keyspace(redis_client: Any) -> None:
    """The client fixture flushes before the test, on either topology."""
    assert [key async for key in redis_client.scan_iter()] == []
    await redis_client.set("aiorp:plugin:{k}", "v")
    assert [key async for key in redis_client.scan_iter()] == [b"aiorp:plugin:{k}"]


async def test_cluster_fixture_is_a_three_master_cluster(
    redis_cluster_client: RedisCluster,
) -> None:
    """The session cluster has three primaries that together cover every slot."""
    primaries = redis_cluster_client.get_primaries()
    assert len(primaries) == 3
    info = await redis_cluster_client.cluster_info()
    assert info["cluster_state"] == "ok"
    assert int(info["cluster_slots_assigned"]) == 16384


async def test_text_fixture_decodes_only_when_asked(redis_client_text: Any) -> None:
    """``redis_client_text`` runs once with bytes replies and once with str replies."""
    await redis_client_text.set("aiorp:plugin:{t}", "v")
    value = await redis_client_text.get("aiorp:plugin:{t}")
    decode = redis_client_text.get_encoder().decode_responses
    assert value == ("v" if decode else b"v")


def test_redis_url_points_the_fixtures_at_an_external_server(
    pytester: pytest.Pytester, redis_server: Endpoint
) -> None:
    """With REDIS_URL set, the plugin uses that server instead of starting one."""
    pytester.makepyfile(
        """
        async def test_external(redis_server, redis_standalone_client):
            assert redis_server.server is None
            await redis_standalone_client.set("aiorp:external", "1")
        """
    )
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REDIS_URL", redis_server.url)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_async_fixtures_work_in_strict_mode(
    pytester: pytest.Pytester, redis_server: Endpoint
) -> None:
    """A user suite running pytest-asyncio in strict mode can use the client fixtures."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_strict(redis_standalone_client):
            assert await redis_standalone_client.ping()
        """
    )
    pytester.makeini("[pytest]\nasyncio_mode = strict\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REDIS_URL", redis_server.url)
        result = pytester.runpytest_subprocess("-p", "asyncio", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


FOREIGN = ["foreign:{a}", "foreign:{b}", "foreign:{c}", "aiorpx:{d}"]
STALE = ["aiorp:stale:{a}", "aiorp:stale:{b}", "aiorp:stale:{c}"]


def test_external_servers_lose_only_the_test_prefix(
    pytester: pytest.Pytester, redis_cluster_server: Endpoint
) -> None:
    """On REDIS_URL / REDIS_CLUSTER_URL servers only ``aiorp:*`` keys are deleted, not FLUSHALL."""
    pytester.makepyfile(
        f"""
        async def test_prefix_only(redis_client):
            for key in {STALE!r}:
                assert not await redis_client.exists(key), key
            for key in {FOREIGN!r}:
                assert await redis_client.exists(key), key
        """
    )
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    cluster = redis.RedisCluster.from_url(redis_cluster_server.url)
    with RedisServer() as server, server.client() as standalone, cluster:
        for client in (standalone, cluster):
            for key in FOREIGN + STALE:
                client.set(key, "1")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("REDIS_URL", server.url)
            mp.setenv("REDIS_CLUSTER_URL", redis_cluster_server.url)
            result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        result.assert_outcomes(passed=2)
        for client in (standalone, cluster):
            assert all(client.exists(key) for key in FOREIGN)


def test_docker_fixture_skips_with_a_reason_without_an_engine(pytester: pytest.Pytester) -> None:
    """Without a reachable Docker engine the Docker fixture skips and says why."""
    pytester.makepyfile(
        """
        def test_docker(redis_docker_url):
            assert redis_docker_url.startswith("redis://")
        """
    )
    result = pytester.runpytest_subprocess("-rs", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    if outcomes.get("passed") == 1:
        return  # an engine is reachable here: the fixture worked for real
    assert outcomes.get("skipped") == 1
    result.stdout.re_match_lines([r".*SKIPPED.*(testcontainers|Docker).*"])
