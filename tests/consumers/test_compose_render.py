"""The consumers role's .env and compose.yaml, rendered by Ansible and read back
by `docker compose config` (the docker CLI's Compose v2 plugin).

`docker compose config` only parses files, so it needs the CLI but no engine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from local_processes import VENV_BIN, run_ansible_playbook

PLAYBOOK = Path(__file__).with_name("render.yml")

# A value with every character that .env or YAML could misread.
TRICKY = "pa$$word ${HOME} $HOME 'single' \"double\" back\\slash # not a comment"


def render(
    tmp_path: Path,
    gpu_hosts: dict[str, dict[str, Any]],
    docker_vars: dict[str, Any] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Render the role's files for an inventory of GPU hosts into tmp_path/out."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    inventory = {
        "all": {
            "children": {
                "ollama_hosts": {"hosts": gpu_hosts},
                "docker_hosts": {
                    "hosts": {
                        "docker-1": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": str(VENV_BIN / "python"),
                            "kafka_bootstrap_servers": "kafka-1.example:9092",
                            "kafka_topic": "requests.v1",
                            "kafka_consumer_group": "group-1",
                            "render_dir": str(out),
                            **(docker_vars or {}),
                        }
                    }
                },
            }
        }
    }
    return run_ansible_playbook(PLAYBOOK, inventory, tmp_path, timeout=180)


def compose_config(directory: Path) -> dict[str, Any]:
    """Return the interpolated project as `docker compose config` reads it."""
    completed = subprocess.run(
        [
            "docker",
            "compose",
            "--project-directory",
            str(directory),
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(completed.stdout)


def environment(config: dict[str, Any], service: str) -> dict[str, str]:
    # `config` writes a literal $ as $$ so that its own output stays valid.
    return {
        key: value.replace("$$", "$")
        for key, value in config["services"][service]["environment"].items()
    }


def gpu(address: str, **extra: Any) -> dict[str, Any]:
    return {"ollama_advertise_address": address, **extra}


@pytest.fixture(autouse=True)
def needs_docker_cli() -> None:
    if shutil.which("docker") is None:
        pytest.fail("the docker CLI with the Compose v2 plugin is required")


def test_values_arrive_exactly(tmp_path: Path) -> None:
    completed = render(
        tmp_path,
        {"gpu-1": gpu("192.0.2.10"), "gpu-2": gpu("192.0.2.11")},
        {"kafka_consumer_group": TRICKY, "consumers_embedding_model": "m'o\"d$el"},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr

    config = compose_config(tmp_path / "out")
    first = environment(config, "consumer-1")
    second = environment(config, "consumer-2")

    assert first["KAFKA_CONSUMER_GROUP"] == TRICKY
    assert second["KAFKA_CONSUMER_GROUP"] == TRICKY
    assert first["OLLAMA_MODEL"] == "m'o\"d$el"
    assert first["OLLAMA_BASE_URL"] == "http://192.0.2.10:11434"
    assert second["OLLAMA_BASE_URL"] == "http://192.0.2.11:11434"
    assert first["INSTANCE_ID"] == "consumer-1"


def test_compose_file_has_no_version_key(tmp_path: Path) -> None:
    completed = render(tmp_path, {"gpu-1": gpu("192.0.2.10")})
    assert completed.returncode == 0, completed.stdout + completed.stderr

    document = yaml.safe_load((tmp_path / "out" / "compose.yaml").read_text())

    assert "version" not in document
    assert list(document["services"]) == ["consumer-1"]


def test_consumers_per_endpoint_and_fixed_port(tmp_path: Path) -> None:
    completed = render(
        tmp_path,
        {
            "gpu-1": gpu("192.0.2.10", consumers_per_endpoint=2),
            "gpu-2": gpu("192.0.2.11", consumers_host_ports=[8063]),
            "gpu-3": gpu("192.0.2.12"),
        },
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr

    config = compose_config(tmp_path / "out")
    ports = {
        name: [int(port["published"]) for port in service["ports"]]
        for name, service in config["services"].items()
    }

    assert ports == {
        "consumer-1": [8090],
        "consumer-2": [8091],
        "consumer-3": [8063],
        "consumer-4": [8092],
    }
    assert environment(config, "consumer-2")["OLLAMA_BASE_URL"] == (
        "http://192.0.2.10:11434"
    )


@pytest.mark.parametrize(
    ("gpu_hosts", "fragments"),
    [
        (
            {
                "gpu-1": gpu("192.0.2.10", consumers_host_ports=[8063]),
                "gpu-2": gpu("192.0.2.11", consumers_host_ports=[8063]),
            },
            ["gpu-2", "port 8063", "gpu-1 already uses"],
        ),
        (
            {"gpu-1": gpu("192.0.2.10", consumers_per_endpoint=0)},
            ["gpu-1", "consumers_per_endpoint is 0"],
        ),
        (
            {"gpu-1": gpu("192.0.2.10", consumers_host_ports=[8063, 8064])},
            ["gpu-1", "lists 2 ports", "1 consumer"],
        ),
        (
            {"gpu-1": gpu("192.0.2.10", consumers_host_ports=[70000])},
            ["gpu-1", "70000"],
        ),
    ],
    ids=["duplicate-port", "zero-consumers", "too-many-ports", "port-out-of-range"],
)
def test_invalid_inventory_fails_before_writing(
    tmp_path: Path, gpu_hosts: dict[str, Any], fragments: list[str]
) -> None:
    completed = render(tmp_path, gpu_hosts)

    assert completed.returncode != 0
    for fragment in fragments:
        assert fragment in completed.stdout
    assert not (tmp_path / "out" / ".env").exists()
