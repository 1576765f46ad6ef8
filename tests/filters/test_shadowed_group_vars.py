"""The fleet_shadowed_group_vars lookup: overridden inventory group variables.

Where a test asks Ansible itself, the value that `ansible` reports for a host
must be the winning one that the lookup names.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from local_processes import REPOSITORY, VENV_BIN

LOOKUP_FILE = REPOSITORY / "lookup_plugins" / "fleet_shadowed_group_vars.py"
spec = importlib.util.spec_from_file_location("fleet_shadowed_group_vars", LOOKUP_FILE)
lookup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lookup)


def shadowed(sources: list[str], playbook_dir: Path) -> list[dict[str, str]]:
    return lookup.shadowed_group_vars(DataLoader(), sources, str(playbook_dir))


PROJECT_TOPIC = "dev.archon-intelligence.intelligence.code-analysis-requested.v1"


def write_inventory(folder: Path, group_vars_all: dict | None = None) -> Path:
    """Write an inventory with group vars in the file and return its folder."""
    inventory = {
        "all": {
            "vars": {
                "kafka_topic": "site.topic",
                # Equal to the project's value, so ignoring it changes nothing.
                "kafka_consumer_group": "archon-intelligence-consumer-group",
                "kafka_bootstrap_servers": "kafka-1.example.com:9092",
            },
            "children": {
                "ollama_hosts": {
                    "vars": {"ollama_port": 11500},
                    "hosts": {"gpu-1": {"ansible_host": "192.0.2.11"}},
                },
                "docker_hosts": {
                    "hosts": {
                        "ingest-1": {
                            "ansible_connection": "local",
                            "kafka_min_partitions": 6,
                        }
                    }
                },
            },
        }
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hosts.yml").write_text(yaml.safe_dump(inventory))
    if group_vars_all is not None:
        (folder / "group_vars").mkdir(exist_ok=True)
        (folder / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars_all))
    return folder


def ansible_value(inventory: Path, host: str, name: str, playbook_dir: Path) -> object:
    """Ask Ansible which value a host gets, with the project's group_vars."""
    completed = subprocess.run(
        [
            str(VENV_BIN / "ansible"),
            "-i",
            str(inventory),
            host,
            "-c",
            "local",
            "--playbook-dir",
            str(playbook_dir),
            "-m",
            "ansible.builtin.debug",
            "-a",
            f"var={name}",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=dict(
            os.environ,
            ANSIBLE_CONFIG=str(REPOSITORY / "ansible.cfg"),
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ),
    )
    output = json.loads(completed.stdout)
    return output["plays"][0]["tasks"][0]["hosts"][host][name]


@pytest.mark.parametrize("playbook_dir", [REPOSITORY, REPOSITORY / "playbooks"])
def test_file_and_beside_vars_listed(tmp_path, playbook_dir):
    inventory = write_inventory(tmp_path / "site", {"fleet_capacity_seconds": 9})

    found = shadowed([str(inventory)], playbook_dir)

    assert found == [
        {
            "name": "kafka_topic",
            "where": "the vars of group all in the inventory",
            "value": '"site.topic"',
            "winning": f'"{PROJECT_TOPIC}"',
        },
        {
            "name": "ollama_port",
            "where": "the vars of group ollama_hosts in the inventory",
            "value": "11500",
            "winning": "11434",
        },
        {
            "name": "fleet_capacity_seconds",
            "where": f"{inventory}/group_vars/all",
            "value": "9",
            "winning": "5",
        },
    ]
    for entry, host in zip(found, ["ingest-1", "gpu-1", "ingest-1"], strict=True):
        assert ansible_value(
            inventory, host, entry["name"], playbook_dir
        ) == json.loads(entry["winning"])


def test_host_and_group_files_kept(tmp_path):
    inventory = write_inventory(tmp_path / "site")
    (inventory / "group_vars").mkdir()
    (inventory / "group_vars" / "docker_hosts.yml").write_text("kafka_topic: mine\n")

    found = shadowed([str(inventory / "hosts.yml")], REPOSITORY)

    assert [entry["name"] for entry in found] == ["kafka_topic", "ollama_port"]
    assert ansible_value(inventory, "ingest-1", "kafka_min_partitions", REPOSITORY) == 6
    assert ansible_value(inventory, "ingest-1", "kafka_topic", REPOSITORY) == "mine"


def test_extra_vars_left_out(tmp_path):
    inventory = write_inventory(tmp_path / "site")

    found = lookup.shadowed_group_vars(
        DataLoader(), [str(inventory)], str(REPOSITORY), ["kafka_topic"]
    )

    assert [entry["name"] for entry in found] == ["ollama_port"]


def test_ini_equal_number_skipped(tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[ollama_hosts]\ngpu-1\n\n[ollama_hosts:vars]\n"
        'ollama_port="11434"\nkafka_min_partitions=4\n'
    )

    found = shadowed([str(inventory)], REPOSITORY)

    assert [(entry["name"], entry["value"]) for entry in found] == [
        ("kafka_min_partitions", "4")
    ]


def test_linked_file_reads_beside_link(tmp_path):
    # Ansible reads group_vars/ beside the path it is given, not beside the
    # file the link points to.
    target = write_inventory(tmp_path / "target", {"kafka_min_partitions": 7})
    linked = tmp_path / "linked"
    (linked / "group_vars").mkdir(parents=True)
    (linked / "group_vars" / "all.yml").write_text("fleet_capacity_seconds: 9\n")
    (linked / "hosts.yml").symlink_to(target / "hosts.yml")

    found = shadowed([str(linked / "hosts.yml")], REPOSITORY)

    assert [entry["where"] for entry in found][-1] == f"{linked}/group_vars/all"
    assert "kafka_min_partitions" not in [entry["name"] for entry in found]
    assert ansible_value(linked, "ingest-1", "fleet_capacity_seconds", REPOSITORY) == 5


@pytest.mark.parametrize("name", ["lab", "bench", "example"])
def test_project_inventories_clean(name):
    assert shadowed([str(REPOSITORY / "inventory" / name)], REPOSITORY) == []


def test_ini_equal_boolean_skipped(tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[docker_hosts]\ningest-1\n\n[docker_hosts:vars]\nfleet_capacity_weighting=no\n"
    )

    assert shadowed([str(inventory)], REPOSITORY) == []


def test_inline_vault_not_decrypted(tmp_path):
    # The check runs without the vault password here, so the value is
    # reported as encrypted and is not decrypted or printed.
    password_file = tmp_path / "vault-password"
    password_file.write_text("lab-only-password\n")
    encrypted = subprocess.run(
        [
            str(VENV_BIN / "ansible-vault"),
            "encrypt_string",
            "--vault-password-file",
            str(password_file),
            "--name",
            "kafka_topic",
            "site.secret.topic",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  vars:\n"
        + "".join(f"    {line}\n" for line in encrypted.splitlines())
        + "  children:\n    docker_hosts:\n      hosts:\n        ingest-1:\n"
    )

    found = shadowed([str(inventory)], REPOSITORY)

    assert [(entry["name"], entry["value"]) for entry in found] == [
        ("kafka_topic", "vault-encrypted")
    ]


def test_unreadable_inventory_skipped(tmp_path):
    inventory = write_inventory(tmp_path / "site")

    found = lookup.shadowed_group_vars(
        DataLoader(),
        [str(inventory)],
        str(REPOSITORY),
        run_hosts=["gpu-1", "ingest-1", "gpu-9"],
    )

    assert found == []
    assert shadowed([str(inventory)], REPOSITORY) != []
