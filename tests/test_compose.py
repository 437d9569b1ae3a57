"""docker-compose.yml offers the servers the README promises, on the ports it names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _services() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services: dict[str, Any] = data["services"]
    return services


def _port(service: dict[str, Any]) -> int:
    """The port a service listens on: its published port, PORT env, or --port argument."""
    if "ports" in service:
        return int(str(service["ports"][0]).split(":")[0])
    if "PORT" in service.get("environment", {}):
        return int(service["environment"]["PORT"])
    command = service["command"]
    return int(command[command.index("--port") + 1])


def _ports(prefix: str) -> list[int]:
    return sorted(_port(s) for name, s in _services().items() if name.startswith(prefix))


def test_standalone_cluster_and_sentinel_services_exist() -> None:
    assert _ports("redis") == [6379]
    assert _ports("cluster-70") == [7000, 7001, 7002, 7003, 7004, 7005]
    assert _ports("sentinel-2") == [26379, 26380, 26381]
    assert _ports("sentinel-master") == [6380]
    assert _ports("sentinel-replica") == [6381]


def test_cluster_is_created_with_three_masters_and_three_replicas() -> None:
    init = " ".join(_services()["cluster-init"]["command"])
    nodes = re.findall(r"127\.0\.0\.1:(\d+)", init)
    assert sorted(map(int, nodes)) == _ports("cluster-70")
    assert "--cluster-replicas 1" in init


def test_sentinels_watch_the_master() -> None:
    command = " ".join(_services()["sentinel-26379"]["command"])
    assert "sentinel monitor aiorp 127.0.0.1 6380 2" in command
    replica = _services()["sentinel-replica"]["command"]
    assert replica[replica.index("--replicaof") + 1 : replica.index("--replicaof") + 3] == [
        "127.0.0.1",
        "6380",
    ]


def _readme_ports() -> set[int]:
    """Every port in the README's Docker table (the rows after its ``| Service | Ports |``)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\|\s*Service\s*\|\s*Ports", line))
    ports: set[int] = set()
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cell = line.strip("|").split("|")[-1]
        ranges = re.findall(r"(\d{4,5})\s*[\u2013-]\s*(\d{4,5})", cell)
        ports |= {p for lo, hi in ranges for p in range(int(lo), int(hi) + 1)}
        ports |= {int(p) for p in re.findall(r"\b\d{4,5}\b", cell)}
    return ports


def _compose_ports() -> set[int]:
    """Every port a long-running compose service listens on (not the one-shot init job)."""
    return {_port(s) for name, s in _services().items() if name != "cluster-init"}


def test_readme_port_table_matches_the_compose_file() -> None:
    assert _readme_ports() == _compose_ports()
