#!/usr/bin/env python3
"""Time the consumer rendering for 20 and 200 GPU hosts side by side.

For each fleet size the benchmark builds the consumer list with the
fleet_consumers filter, renders the consumers role's env.j2 and compose.yaml.j2
with Jinja2 and the project's filters, and computes the partition count that
playbooks/kafka.yml requests. Ansible's own task overhead is not included: this
measures the part that grows with the inventory.

Usage: .venv/bin/python benchmarks/render_scale.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import jinja2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "filter_plugins"))

from fleet import fleet_consumers, fleet_dotenv_quote  # noqa: E402 (path set above)

TEMPLATES = REPO / "roles" / "consumers" / "templates"
SIZES = (20, 200)


def inventory(size: int) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Return GPU host names and host variables in documentation addresses.

    Every tenth host runs two consumers, like a host with a faster GPU.
    """
    hosts = [f"gpu-{index:03d}" for index in range(1, size + 1)]
    hostvars = {
        name: {
            "ollama_advertise_address": f"198.51.100.{index % 250 + 1}",
            "consumers_per_endpoint": 2 if index % 10 == 0 else 1,
        }
        for index, name in enumerate(hosts, start=1)
    }
    return hosts, hostvars


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["to_json"] = json.dumps
    env.filters["fleet_dotenv_quote"] = fleet_dotenv_quote
    return env


def render_once(env: jinja2.Environment, size: int) -> tuple[int, int, int]:
    """Render both files for one fleet; return (consumers, partitions, bytes)."""
    hosts, hostvars = inventory(size)
    consumers = fleet_consumers(hosts, hostvars, 8090)
    partitions = max(len(consumers), 1)
    context = {
        "ansible_managed": "Ansible managed",
        "__consumers": consumers,
        "__consumers_env": {
            "OLLAMA_MODEL": "nomic-embed-text",
            "KAFKA_BOOTSTRAP_SERVERS": "kafka-1.example:9092",
            "KAFKA_CONSUMER_GROUP": "archon-intelligence-consumer-group",
            "KAFKA_TOPIC": "requests.v1",
            "HTTP_POOL_TIMEOUT": "30",
        },
        "consumers_image": "ollama-fleet-consumer:latest",
        "consumers_healthcheck_command": ["CMD", "true"],
        "__consumers_publish_prefix": "",
        "__consumers_container_port": 8080,
    }
    dotenv = env.get_template("env.j2").render(context)
    compose = env.get_template("compose.yaml.j2").render(context)
    return len(consumers), partitions, len(dotenv) + len(compose)


def measure(env: jinja2.Environment, size: int, repeats: int) -> dict[str, Any]:
    render_once(env, size)  # Compiles the templates outside the timing.
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        consumers, partitions, size_bytes = render_once(env, size)
        seconds.append(time.perf_counter() - started)
    return {
        "hosts": size,
        "consumers": consumers,
        "partitions": partitions,
        "bytes": size_bytes,
        "median_ms": statistics.median(seconds) * 1000,
        "min_ms": min(seconds) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=50, help="timed runs per size (default 50)"
    )
    arguments = parser.parse_args()

    env = environment()
    results = [measure(env, size, arguments.repeats) for size in SIZES]

    print(
        "| GPU hosts | consumers | partitions | bytes rendered | median ms | min ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for row in results:
        print(
            f"| {row['hosts']} | {row['consumers']} | {row['partitions']} | "
            f"{row['bytes']} | {row['median_ms']:.2f} | {row['min_ms']:.2f} |"
        )
    small, large = results
    print(
        f"\n200/20 ratios: hosts {large['hosts'] / small['hosts']:.1f}, "
        f"bytes {large['bytes'] / small['bytes']:.2f}, "
        f"median time {large['median_ms'] / small['median_ms']:.2f}"
    )


if __name__ == "__main__":
    main()
