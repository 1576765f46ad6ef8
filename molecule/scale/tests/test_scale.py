"""Adding and removing a GPU host, each step followed by its checks.

Converge ran site.yml with scale-gpu-1 and scale-gpu-2 in ollama_hosts and
kafka_min_partitions 4, so the topic was created with 4 partitions. The tests
edit scale-ollama-hosts.yml in molecule's inventory folder one line at a time,
run site.yml again and check the GPU hosts, the consumers in the lab's Docker
Engine, the topic and the consumer group on the lab's Tansu. They depend on
each other's results and run in file order.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import testinfra

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[3]))
sys.path.insert(0, str(PROJECT / "module_utils"))

from kafka_admin import (  # noqa: E402 (path set above)
    describe_consumer_group,
    describe_partition_count,
    open_admin,
)

SITE = PROJECT / "site.yml"
VERIFY = PROJECT / "playbooks" / "verify.yml"
HOSTS_FILE = "scale-ollama-hosts.yml"
NEW_HOST = "scale-gpu-3"
NEW_HOST_LINE = f"    {NEW_HOST}:\n"
# Five consumers for a topic of four partitions: Tansu 0.6.0 cannot add the fifth.
BIG_HOST_LINE = f"    {NEW_HOST}: {{consumers_per_endpoint: 3}}\n"
KAFKA = "10.89.200.250:9092"
TOPIC = "scale.code-analysis-requested.v1"
GROUP = "scale-consumer-group"
PARTITIONS = 4
DOCKER_HOST = "unix:///run/ollama-fleet-lab/docker.sock"
COMPOSE_PROJECT = "ollama-fleet-scale-consumers"
CONSUMERS_DIR = Path("/var/lib/ollama-fleet-lab/scale-consumers")
FIRST_PORT = 8390
KAFKA_PLAY = "Ensure the Kafka topic has a partition for every consumer"
SIZING_TASK = "Raise the topic's partitions to at least the number of consumers"
CONSUMERS_PLAY = "Deploy one consumer per Ollama endpoint on the Docker host"
OLLAMA_PLAY = "Install Ollama on the GPU hosts and open its port to the Docker hosts"


def inventory() -> Path:
    """Return molecule's inventory folder for this scenario."""
    inventory_file = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not inventory_file:
        pytest.fail("MOLECULE_INVENTORY_FILE is not set; run this through molecule")
    return Path(inventory_file).parent


def set_new_host_line(line: str | None) -> None:
    """Append `line` to the GPU host list, or with None remove scale-gpu-3 from it."""
    hosts_file = inventory() / HOSTS_FILE
    lines = [
        text
        for text in hosts_file.read_text().splitlines(keepends=True)
        if not text.strip().startswith(f"{NEW_HOST}:")
    ]
    if line is not None:
        lines.append(line)
    hosts_file.write_text("".join(lines))


def run_playbook(playbook: Path, extra_vars: dict[str, Any] | None = None) -> dict:
    """Run a playbook against the scenario and return the JSON callback's output.

    The return code is added as "rc". A failed run is returned, not raised.
    """
    command = ["ansible-playbook", "-i", str(inventory()), str(playbook)]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    environment = dict(os.environ)
    environment["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    environment["ANSIBLE_CONFIG"] = str(PROJECT / "ansible.cfg")
    completed = subprocess.run(
        command, capture_output=True, text=True, env=environment, check=False
    )
    try:
        output = json.loads(completed.stdout)
    except ValueError:
        pytest.fail(f"{playbook.name} printed no JSON: {completed.stdout[-2000:]}")
    output["rc"] = completed.returncode
    return output


def failure_messages(output: dict) -> list[str]:
    """Collect the msg of every failed task result, for assertions and their text."""
    messages = []
    for play in output.get("plays", []):
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("failed") and not result.get("ignore_errors"):
                    messages.append(f"{host}: {result.get('msg')}")
    return messages


def task_result(output: dict, play_name: str, task_name: str) -> dict:
    """Return the Docker host's result of one task, or fail naming the task."""
    for play in output["plays"]:
        if play["play"]["name"] != play_name:
            continue
        for task in play["tasks"]:
            if task["task"]["name"] == task_name:
                return task["hosts"]["scale-controller"]
    pytest.fail(f"task {task_name!r} of play {play_name!r} did not run")


def play_names(output: dict) -> list[str]:
    return [play["play"]["name"] for play in output["plays"]]


def docker(*arguments: str) -> str:
    completed = subprocess.run(
        ["docker", "-H", DOCKER_HOST, *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return completed.stdout


def consumer_containers() -> dict[str, dict[str, Any]]:
    """Return the scenario's consumer containers by Compose service name."""
    containers = {}
    listing = docker(
        "ps",
        "--all",
        "--filter",
        f"label=com.docker.compose.project={COMPOSE_PROJECT}",
        "--format",
        "{{.ID}}",
    )
    for container in listing.split():
        inspected = json.loads(docker("inspect", container))[0]
        service = inspected["Config"]["Labels"]["com.docker.compose.service"]
        containers[service] = inspected
    return containers


def partition_count() -> int | None:
    return describe_partition_count(open_admin(KAFKA, 10), TOPIC)


def group_members(expected: list[str], attempts: int = 40) -> list[str]:
    """Return the group's client ids once they equal `expected`, or the last seen.

    A consumer joins about half of session.timeout.ms after it starts, and one
    that left is dropped at once, so the list is read until it settles.
    """
    session = open_admin(KAFKA, 10)
    seen: list[str] = []
    for _ in range(attempts):
        description = describe_consumer_group(session, GROUP)
        assert description["members_known"], description
        seen = [member["client_id"] for member in description["members"]]
        if seen == expected:
            return seen
        time.sleep(2)
    return seen


def compose_file_digest() -> str:
    return hashlib.sha256((CONSUMERS_DIR / "compose.yaml").read_bytes()).hexdigest()


@pytest.fixture(scope="module", autouse=True)
def restore_inventory() -> Iterator[None]:
    """Leave scale-gpu-3 out of ollama_hosts when the tests end, as prepare did."""
    yield
    set_new_host_line(None)


def test_converged_fleet_has_two_consumers() -> None:
    containers = consumer_containers()

    assert sorted(containers) == ["consumer-1", "consumer-2"]
    for service, container in containers.items():
        assert container["State"]["Health"]["Status"] == "healthy", service
    assert partition_count() == PARTITIONS
    assert group_members(["consumer-1", "consumer-2"]) == ["consumer-1", "consumer-2"]


def test_added_host_gets_ollama_and_consumer() -> None:
    before = consumer_containers()
    set_new_host_line(NEW_HOST_LINE)

    output = run_playbook(SITE)

    assert output["rc"] == 0, failure_messages(output)
    sizing = task_result(output, KAFKA_PLAY, SIZING_TASK)
    assert sizing["changed"] is False
    assert sizing["partitions_before"] == PARTITIONS
    assert sizing["partitions"] == PARTITIONS

    new_host = testinfra.get_host(f"podman://{NEW_HOST}")
    assert new_host.service("ollama").is_running
    assert "nomic-embed-text:latest" in new_host.check_output("ollama list")

    containers = consumer_containers()
    assert sorted(containers) == ["consumer-1", "consumer-2", "consumer-3"]
    assert containers["consumer-3"]["State"]["Health"]["Status"] == "healthy"
    health = httpx.get(f"http://127.0.0.1:{FIRST_PORT + 2}/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["instance_id"] == "consumer-3"
    # No partition was added, so the other consumers kept running.
    for service in ("consumer-1", "consumer-2"):
        assert (
            containers[service]["State"]["StartedAt"]
            == before[service]["State"]["StartedAt"]
        ), service

    assert partition_count() == PARTITIONS
    assert group_members(["consumer-1", "consumer-2", "consumer-3"]) == [
        "consumer-1",
        "consumer-2",
        "consumer-3",
    ]


def test_removed_host_loses_consumer() -> None:
    set_new_host_line(None)

    output = run_playbook(SITE)

    assert output["rc"] == 0, failure_messages(output)
    assert sorted(consumer_containers()) == ["consumer-1", "consumer-2"]
    assert partition_count() == PARTITIONS
    assert group_members(["consumer-1", "consumer-2"]) == ["consumer-1", "consumer-2"]


def test_too_few_partitions_stops_before_deploy() -> None:
    before = consumer_containers()
    digest = compose_file_digest()
    set_new_host_line(BIG_HOST_LINE)

    output = run_playbook(SITE, {"kafka_min_partitions": 1})
    set_new_host_line(None)

    messages = failure_messages(output)
    assert output["rc"] != 0
    assert any("does not support CreatePartitions" in text for text in messages), (
        messages
    )
    assert any(f"from {PARTITIONS} to 5 partitions" in text for text in messages), (
        messages
    )
    # Preflight checks the broker first, so no GPU host is touched either.
    assert OLLAMA_PLAY not in play_names(output)
    assert CONSUMERS_PLAY not in play_names(output)

    after = consumer_containers()
    assert sorted(after) == ["consumer-1", "consumer-2"]
    for service in after:
        assert after[service]["Id"] == before[service]["Id"], service
        started = after[service]["State"]["StartedAt"]
        assert started == before[service]["State"]["StartedAt"], service
    assert compose_file_digest() == digest
    assert partition_count() == PARTITIONS


def test_stopped_consumer_fails_verification() -> None:
    container = consumer_containers()["consumer-2"]["Id"]
    docker("stop", container)
    try:
        assert group_members(["consumer-1"]) == ["consumer-1"]

        output = run_playbook(VERIFY, {"fleet_group_retries": 2})

        messages = failure_messages(output)
        assert output["rc"] != 0
        assert any("missing consumers consumer-2" in text for text in messages), (
            messages
        )
    finally:
        docker("start", container)

    assert group_members(["consumer-1", "consumer-2"]) == ["consumer-1", "consumer-2"]
