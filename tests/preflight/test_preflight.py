"""site.yml stops in playbooks/preflight.yml before any GPU host is contacted.

The Docker host is the controller and the broker a local Tansu, which lacks
CreatePartitions. The GPU hosts have names that do not resolve, so a run that
went past preflight would fail on them as unreachable, not in preflight.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from local_processes import REPOSITORY, VENV_BIN, run_ansible_playbook, running_tansu

SITE = REPOSITORY / "site.yml"
TOPIC = "preflight-files"
PREFLIGHT_PLAYS = [
    "Check the inventory before changing any host",
    "Check the consumers and the Kafka topic before changing any host",
]


@pytest.fixture(scope="module")
def kafka() -> Iterator[str]:
    """Run Tansu with TOPIC at 2 partitions; yield its bootstrap address."""
    with running_tansu() as bootstrap:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(TOPIC, 2, 1)])[TOPIC].result(timeout=10)
        yield bootstrap


def inventory(
    kafka: str, gpu_hosts: dict[str, dict[str, Any]], all_vars: dict | None = None
) -> dict[str, Any]:
    return {
        "all": {
            "vars": all_vars or {},
            "children": {
                "ollama_hosts": {
                    "hosts": {
                        name: {"ansible_host": f"{name}.invalid", **settings}
                        for name, settings in gpu_hosts.items()
                    }
                },
                "docker_hosts": {
                    "hosts": {
                        "docker-1": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": str(VENV_BIN / "python"),
                            "kafka_bootstrap_servers": kafka,
                            "kafka_topic": TOPIC,
                            "kafka_consumer_group": "preflight-group",
                        }
                    }
                },
            },
        }
    }


def run_site(
    tmp_path: Path,
    kafka: str,
    gpu_hosts: dict[str, dict],
    all_vars: dict | None = None,
    arguments: tuple[str, ...] = (),
) -> dict:
    completed = run_ansible_playbook(
        SITE,
        inventory(kafka, gpu_hosts, all_vars),
        tmp_path,
        timeout=300,
        arguments=arguments,
        env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"},
    )
    output = json.loads(completed.stdout)
    output["rc"] = completed.returncode
    return output


def failures(output: dict) -> list[str]:
    return [
        f"{host}: {result.get('msg')}"
        for play in output["plays"]
        for task in play["tasks"]
        for host, result in task["hosts"].items()
        if result.get("failed")
    ]


def play_names(output: dict) -> list[str]:
    return [play["play"]["name"] for play in output["plays"]]


def test_missing_create_partitions_stops_run(tmp_path, kafka):
    # Three consumers need three partitions; Tansu cannot add the third.
    output = run_site(
        tmp_path, kafka, {"gpu-1": {"consumers_per_endpoint": 2}, "gpu-2": {}}
    )

    assert output["rc"] != 0
    assert play_names(output) == PREFLIGHT_PLAYS
    messages = failures(output)
    assert any("does not support CreatePartitions" in text for text in messages), (
        messages
    )
    assert not any("gpu-" in text.split(":")[0] for text in messages), messages


def test_shared_port_stops_run(tmp_path, kafka):
    output = run_site(
        tmp_path,
        kafka,
        {
            "gpu-1": {"consumers_host_ports": [8063]},
            "gpu-2": {"consumers_host_ports": [8063]},
        },
    )

    assert output["rc"] != 0
    assert play_names(output) == PREFLIGHT_PLAYS
    messages = failures(output)
    assert any(
        "gpu-2: consumers_host_ports contains port 8063" in text for text in messages
    ), messages


def test_unreachable_broker_stops_run(tmp_path):
    output = run_site(tmp_path, "127.0.0.1:9", {"gpu-1": {}})

    assert output["rc"] != 0
    assert play_names(output) == PREFLIGHT_PLAYS
    messages = failures(output)
    assert any("127.0.0.1:9" in text for text in messages), messages


def test_hidden_group_var_stops_run(tmp_path):
    # kafka_bootstrap_servers is not in group_vars/all.yml, so the inventory's
    # value holds; kafka_topic is, so the inventory's value would be dropped.
    output = run_site(
        tmp_path,
        "127.0.0.1:9",
        {"gpu-1": {}},
        {"kafka_topic": "site.topic", "kafka_bootstrap_servers": "127.0.0.1:9"},
    )

    assert output["rc"] != 0
    assert play_names(output) == PREFLIGHT_PLAYS[:1]
    messages = " ".join(failures(output))
    assert 'kafka_topic is set to "site.topic" in the vars of group all' in messages
    assert "kafka_bootstrap_servers" not in messages


@pytest.mark.parametrize(
    "arguments", [("--limit", "gpu-1"), ("--tags", "ollama")], ids=["limit", "tags"]
)
def test_limit_tags_keep_preflight(tmp_path, arguments):
    output = run_site(
        tmp_path,
        "127.0.0.1:9",
        {"gpu-1": {}},
        {"kafka_topic": "site.topic", "kafka_bootstrap_servers": "127.0.0.1:9"},
        arguments,
    )

    assert output["rc"] != 0
    assert play_names(output)[0] == PREFLIGHT_PLAYS[0]
    assert "kafka_topic is set to" in " ".join(failures(output))
    assert all(stats["unreachable"] == 0 for stats in output["stats"].values())


def encrypt(path: Path, password_file: Path) -> None:
    subprocess.run(
        [
            str(VENV_BIN / "ansible-vault"),
            "encrypt",
            "--vault-password-file",
            str(password_file),
            str(path),
        ],
        check=True,
        capture_output=True,
    )


def test_vault_group_vars_read(tmp_path):
    # group_vars/all beside the inventory as a folder with an encrypted file,
    # as sites keep their Kafka password. With the run's password, preflight
    # reads it: the password alone passes, a topic there is reported.
    password_file = tmp_path / "vault-password"
    password_file.write_text("lab-only-password\n")
    vault_file = tmp_path / "group_vars" / "all" / "vault.yml"
    vault_file.parent.mkdir(parents=True)
    vault_file.write_text("kafka_sasl_password: lab-only-secret\n")
    encrypt(vault_file, password_file)
    arguments = ("--vault-password-file", str(password_file))

    passing = run_site(tmp_path, "127.0.0.1:9", {"gpu-1": {}}, arguments=arguments)

    vault_file.write_text("kafka_topic: vaulted.topic\n")
    encrypt(vault_file, password_file)
    failing = run_site(tmp_path, "127.0.0.1:9", {"gpu-1": {}}, arguments=arguments)

    # The first run passes the inventory play and stops at the closed broker.
    assert play_names(passing) == PREFLIGHT_PLAYS
    assert any("127.0.0.1:9" in text for text in failures(passing))
    assert play_names(failing) == PREFLIGHT_PLAYS[:1]
    assert (
        f'kafka_topic is set to "vaulted.topic" in {tmp_path}/group_vars/all'
        in " ".join(failures(failing))
    )


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        (["127.0.0.1:9"], "kafka_bootstrap_servers is invalid: ['127.0.0.1:9']"),
        (None, "kafka_bootstrap_servers is invalid: None"),
        (
            "127.0.0.1:99999",
            "invalid kafka_bootstrap_servers entry '127.0.0.1:99999' in",
        ),
        (
            "kafka://127.0.0.1:9",
            "invalid kafka_bootstrap_servers entry 'kafka://127.0.0.1:9'",
        ),
    ],
)
def test_bad_servers_stop_run(tmp_path, servers, message):
    output = run_site(tmp_path, servers, {"gpu-1": {}})

    assert output["rc"] != 0
    assert play_names(output) == PREFLIGHT_PLAYS[:1]
    # The JSON callback shortens a long msg in the middle; the full text is
    # in the result's other fields.
    assert f"docker-1: {message}" in json.dumps(output)
