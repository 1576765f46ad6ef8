"""Tests of the fleet filters that shape endpoints and firewall summaries."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

FILTER_FILE = Path(__file__).resolve().parents[2] / "filter_plugins" / "fleet.py"
spec = importlib.util.spec_from_file_location("fleet_filters", FILTER_FILE)
fleet = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fleet)


def test_endpoints_use_advertise_address() -> None:
    hostvars = {
        "gpu-1": {"ollama_advertise_address": "192.0.2.11", "ollama_port": 11434},
        "gpu-2": {"ollama_advertise_address": "gpu-2.example.com", "ollama_port": 8080},
    }

    endpoints = fleet.fleet_ollama_endpoints(["gpu-1", "gpu-2"], hostvars)

    assert endpoints == [
        {"name": "gpu-1", "url": "http://192.0.2.11:11434"},
        {"name": "gpu-2", "url": "http://gpu-2.example.com:8080"},
    ]


def test_endpoints_bracket_ipv6() -> None:
    hostvars = {"gpu-1": {"ollama_advertise_address": "2001:db8::11"}}

    endpoints = fleet.fleet_ollama_endpoints(["gpu-1"], hostvars)

    assert endpoints[0]["url"] == "http://[2001:db8::11]:11434"


@pytest.mark.parametrize("address", ["0.0.0.0", "::", ""])
def test_endpoints_reject_bind_only_address(address: str) -> None:
    hostvars = {"gpu-7": {"ollama_advertise_address": address}}

    with pytest.raises(AnsibleFilterError) as raised:
        fleet.fleet_ollama_endpoints(["gpu-7"], hostvars)

    assert "gpu-7" in str(raised.value)
    assert "ollama_advertise_address" in str(raised.value)


def ufw_status(*lines: str, rc: int = 0) -> dict:
    return {"rc": rc, "stdout_lines": list(lines)}


def test_ufw_summary_lists_sources() -> None:
    status = ufw_status(
        "Status: active",
        "",
        "To                         Action      From",
        "--                         ------      ----",
        "22/tcp                     ALLOW       Anywhere     # ollama-fleet: SSH",
        "11434/tcp                  ALLOW       192.0.2.20   # ollama-fleet: Ollama",
        "11434/tcp                  ALLOW IN    198.51.100.7",
    )

    summary = fleet.fleet_ufw_summary(status, 11434)

    assert summary == "ufw: 11434/tcp from 192.0.2.20, 198.51.100.7"


def test_ufw_summary_inactive() -> None:
    assert fleet.fleet_ufw_summary(ufw_status("Status: inactive"), 11434) == (
        "ufw inactive"
    )


def test_ufw_summary_without_rule() -> None:
    status = ufw_status("Status: active", "22/tcp  ALLOW  Anywhere")

    assert fleet.fleet_ufw_summary(status, 11434) == "ufw: no rule for 11434/tcp"


def test_ufw_summary_missing_ufw() -> None:
    assert fleet.fleet_ufw_summary(ufw_status(rc=127), 11434) == "ufw not available"


def test_endpoint_without_facts_rejected(tmp_path) -> None:
    # The project's default ollama_advertise_address is the host's
    # ansible_default_ipv4 address; gpu-1 has no facts, as when it was
    # unreachable while they were gathered.
    repository = FILTER_FILE.parents[1]
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("ollama_hosts:\n  hosts:\n    gpu-1.invalid:\n")

    completed = subprocess.run(
        [
            str(repository / ".venv" / "bin" / "ansible"),
            "-i",
            str(inventory),
            "localhost",
            "--playbook-dir",
            str(repository),
            "-m",
            "ansible.builtin.debug",
            "-a",
            "msg={{ groups['ollama_hosts'] | fleet_ollama_endpoints(hostvars) }}",
        ],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, ANSIBLE_CONFIG=str(repository / "ansible.cfg")),
    )

    assert completed.returncode != 0
    assert "gpu-1.invalid: ollama_advertise_address is missing" in completed.stdout, (
        completed.stdout
    )
    assert "check that the host is reachable" in completed.stdout
