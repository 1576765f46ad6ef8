"""Checks of the converged molecule fleet, from the hosts and from the Docker host.

Each test opens its own testinfra connections: podman:// for the lab hosts
and local:// for the controller, which is the scenario's Docker host.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
import testinfra

GPU_HOSTS = ["molecule-gpu-1", "molecule-gpu-2", "molecule-gpu-3"]
OUTSIDER = "molecule-outsider"
NETWORK = "ollama-fleet-molecule"
PORT = 11434
MODEL = "nomic-embed-text:latest"
CONSUMERS_DIR = Path("/var/lib/ollama-fleet-lab/molecule-consumers")
FIRST_CONSUMER_PORT = 8190
DOCKER_HOST = "unix:///run/ollama-fleet-lab/docker.sock"


def container_address(name: str) -> str:
    """Read a scenario container's address on the scenario network from podman."""
    template = f'{{{{ (index .NetworkSettings.Networks "{NETWORK}").IPAddress }}}}'
    result = subprocess.run(
        ["podman", "inspect", "--format", template, name],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


@pytest.fixture(scope="module", params=GPU_HOSTS)
def gpu(request: pytest.FixtureRequest) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{request.param}")


def test_ollama_service_running(gpu: testinfra.host.Host) -> None:
    service = gpu.service("ollama")
    assert service.is_running
    assert service.is_enabled


def test_unit_as_installer_writes_it(gpu: testinfra.host.Host) -> None:
    unit = gpu.file("/etc/systemd/system/ollama.service")
    assert unit.exists
    assert "ExecStart=/usr/local/bin/ollama serve" in unit.content_string
    assert "User=ollama" in unit.content_string
    assert "Restart=always" in unit.content_string


def test_ollama_user_is_system_account(gpu: testinfra.host.Host) -> None:
    user = gpu.user("ollama")
    assert user.exists
    assert user.home == "/usr/share/ollama"
    assert user.shell == "/bin/false"
    assert user.uid < 1000


def test_drop_in_environment_in_effect(gpu: testinfra.host.Host) -> None:
    drop_in = gpu.file("/etc/systemd/system/ollama.service.d/override.conf")
    assert drop_in.exists
    assert f'Environment="OLLAMA_HOST=0.0.0.0:{PORT}"' in drop_in.content_string

    environment = gpu.check_output("systemctl show ollama --property=Environment")
    assert f"OLLAMA_HOST=0.0.0.0:{PORT}" in environment


def test_listening_on_all_addresses(gpu: testinfra.host.Host) -> None:
    # Without the drop-in in effect the server would bind to 127.0.0.1 only.
    assert gpu.socket(f"tcp://0.0.0.0:{PORT}").is_listening


def test_model_listed_by_cli(gpu: testinfra.host.Host) -> None:
    listing = gpu.check_output("ollama list")
    assert MODEL in listing


def test_model_listed_by_api(gpu: testinfra.host.Host) -> None:
    tags = json.loads(gpu.check_output(f"curl -sS http://127.0.0.1:{PORT}/api/tags"))
    names = [model["name"] for model in tags["models"]]
    assert MODEL in names


def test_ufw_active_with_ollama_rule(gpu: testinfra.host.Host) -> None:
    status = gpu.check_output("ufw status")
    assert "Status: active" in status
    assert f"{PORT}/tcp" in status


def test_docker_host_connects() -> None:
    for name in GPU_HOSTS:
        address = container_address(name)
        response = httpx.get(f"http://{address}:{PORT}/", timeout=5)
        assert response.status_code == 200, name
        assert response.text == "Ollama is running", name


def test_outsider_refused() -> None:
    outsider = testinfra.get_host(f"podman://{OUTSIDER}")
    for name in GPU_HOSTS:
        address = container_address(name)
        probe = outsider.run(f"curl -sS -m 3 -o /dev/null http://{address}:{PORT}/")
        # 7: connection refused (reject), 28: timed out (drop); 0 would mean open.
        assert probe.rc in (7, 28), f"{OUTSIDER} reached {name}: rc={probe.rc}"


def test_env_file_rendered() -> None:
    env_file = CONSUMERS_DIR / ".env"
    assert env_file.exists()
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"

    # The role double-quotes every value; test_compose_file_rendered checks
    # that Compose reads them back unchanged.
    lines = env_file.read_text().splitlines()
    for index, name in enumerate(GPU_HOSTS, start=1):
        url = f"http://{container_address(name)}:{PORT}"
        assert f'OLLAMA_BASE_URL_CONSUMER_{index}="{url}"' in lines


def test_compose_file_rendered() -> None:
    environment = dict(os.environ, DOCKER_HOST=DOCKER_HOST)
    result = subprocess.run(
        [
            "docker",
            "compose",
            "--project-directory",
            str(CONSUMERS_DIR),
            "config",
            "--format",
            "json",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=environment,
    )
    config = json.loads(result.stdout)
    services = config["services"]
    assert len(services) == len(GPU_HOSTS)

    for index, name in enumerate(GPU_HOSTS, start=1):
        service = services[f"consumer-{index}"]
        assert service["environment"]["INSTANCE_ID"] == f"consumer-{index}"
        expected_url = f"http://{container_address(name)}:{PORT}"
        assert service["environment"]["OLLAMA_BASE_URL"] == expected_url
        published = [port["published"] for port in service["ports"]]
        assert str(FIRST_CONSUMER_PORT + index - 1) in published


def test_consumers_healthy() -> None:
    for index in range(len(GPU_HOSTS)):
        port = FIRST_CONSUMER_PORT + index
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert response.status_code == 200, port
