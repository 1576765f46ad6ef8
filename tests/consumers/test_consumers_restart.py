"""A partition increase restarts the consumers, through playbooks/kafka.yml and
the consumers role, with the consumers running in the lab's Docker Engine.

Tansu 0.6.0 cannot raise partitions, so playbooks/kafka.yml talks to
tests/kafka_test_broker on 127.0.0.1, which can. The consumers themselves join
a topic of the same name on the lab's Tansu, because the test broker stores no
messages and has no consumer groups. Needs `lab/labctl up --no-hosts`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka_test_broker import Broker
from local_processes import VENV_BIN, run_ansible_playbook, running_test_broker

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(__file__).with_name("scale.yml")

sys.path.insert(0, str(REPO / "module_utils"))

from kafka_admin import KafkaAdminError, create_topic, open_admin  # noqa: E402 (path set above)

DOCKER_SOCKET = Path("/run/ollama-fleet-lab/docker.sock")
DOCKER_HOST = f"unix://{DOCKER_SOCKET}"
LAB_KAFKA = "10.89.200.250:9092"
LAB_NETWORK = "ollama-fleet-lab"
PROJECT_NAME = "ollama-fleet-restart-test-consumers"
CONSUMER_IMAGE = "localhost/ollama-fleet-lab/consumer:latest"
FIRST_PORT = 8590
TOPIC = "restart-test.code-analysis-requested.v1"
GROUP = "restart-test-consumer-group"
KEY_WARNING = "messages with a key now go to a different partition"


def docker(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "-H", DOCKER_HOST, *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def lab_gateway() -> str:
    """Return the lab network's gateway, the controller's address on it."""
    completed = subprocess.run(
        ["podman", "network", "inspect", LAB_NETWORK],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(completed.stdout)[0]["subnets"][0]["gateway"]


def started_at() -> dict[str, str]:
    """Return each consumer service's container start time, by service name."""
    listing = docker(
        "ps",
        "--all",
        "--filter",
        f"label=com.docker.compose.project={PROJECT_NAME}",
        "--format",
        "{{.ID}}",
    )
    times = {}
    for container in listing.stdout.split():
        inspected = json.loads(docker("inspect", container).stdout)[0]
        service = inspected["Config"]["Labels"]["com.docker.compose.service"]
        times[service] = inspected["State"]["StartedAt"]
    return times


def run_playbook(
    tmp_path: Path, broker: Broker, gpu_hosts: list[str], project_dir: Path
) -> subprocess.CompletedProcess[str]:
    """Run scale.yml for `gpu_hosts`, all of them the controller under other names.

    The GPU hosts are never contacted over HTTP: their address is the lab
    network's gateway, and a consumer calls Ollama only for a message, and
    the test produces none.
    """
    gateway = lab_gateway()
    python = str(VENV_BIN / "python")
    inventory = {
        "all": {
            "children": {
                "ollama_hosts": {
                    "hosts": {
                        name: {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": python,
                            "ollama_advertise_address": gateway,
                        }
                        for name in gpu_hosts
                    }
                },
                "docker_hosts": {
                    "hosts": {
                        "docker-1": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": python,
                            "kafka_bootstrap_servers": broker.bootstrap_servers,
                            "kafka_topic": TOPIC,
                            "kafka_consumer_group": GROUP,
                            "consumers_kafka_bootstrap_servers": LAB_KAFKA,
                            "consumers_docker_host": DOCKER_HOST,
                            "consumers_project_dir": str(project_dir),
                            "consumers_project_name": PROJECT_NAME,
                            "consumers_image": CONSUMER_IMAGE,
                            "consumers_pull_policy": "never",
                            "consumers_first_port": FIRST_PORT,
                        }
                    }
                },
            }
        }
    }
    return run_ansible_playbook(PLAYBOOK, inventory, tmp_path, timeout=600)


@pytest.fixture
def broker() -> Iterator[Broker]:
    """Start the test broker on 127.0.0.1 with the topic at 2 partitions."""
    with running_test_broker() as test_broker:
        test_broker.add_topic(TOPIC, 2)
        yield test_broker


@pytest.fixture
def project_dir(tmp_path: Path) -> Iterator[Path]:
    """Yield the consumers' project folder, and take the project down afterwards."""
    if not DOCKER_SOCKET.exists():
        pytest.fail(
            f"the lab's Docker Engine socket {DOCKER_SOCKET} is missing; start it "
            "with `lab/labctl up --no-hosts`"
        )

    # The consumers join a topic of the same name on Tansu, with one partition
    # for each of the 3 consumers.
    session = open_admin(LAB_KAFKA, 10)
    try:
        create_topic(session, TOPIC, 3, 1)
    except KafkaAdminError as error:
        if "already exists" not in str(error).lower():
            raise

    directory = tmp_path / "consumers"
    try:
        yield directory
    finally:
        subprocess.run(
            [
                "docker",
                "-H",
                DOCKER_HOST,
                "compose",
                "--project-name",
                PROJECT_NAME,
                "down",
                "--remove-orphans",
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )


def test_partition_increase_restarts_consumers(
    tmp_path: Path, broker: Broker, project_dir: Path
) -> None:
    first = run_playbook(tmp_path, broker, ["gpu-1", "gpu-2"], project_dir)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    before = started_at()
    assert sorted(before) == ["consumer-1", "consumer-2"]
    assert broker.requests["CreatePartitions"] == 0

    # Same fleet again: no increase, so no restart.
    again = run_playbook(tmp_path, broker, ["gpu-1", "gpu-2"], project_dir)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    assert started_at() == before
    assert broker.requests["CreatePartitions"] == 0

    # A third GPU host: the topic grows from 2 to 3 and every consumer restarts.
    grown = run_playbook(tmp_path, broker, ["gpu-1", "gpu-2", "gpu-3"], project_dir)
    assert grown.returncode == 0, grown.stdout[-3000:] + grown.stderr
    after = started_at()

    assert broker.requests["CreatePartitions"] == 1
    assert broker.topics[TOPIC] == 3
    assert KEY_WARNING in grown.stdout + grown.stderr
    assert sorted(after) == ["consumer-1", "consumer-2", "consumer-3"]
    assert after["consumer-1"] != before["consumer-1"]
    assert after["consumer-2"] != before["consumer-2"]
