"""fleet_consumers and fleet_consumer_ports: names, ports and their errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

FILTER_FILE = Path(__file__).resolve().parents[2] / "filter_plugins" / "fleet.py"
spec = importlib.util.spec_from_file_location("fleet_filters", FILTER_FILE)
fleet = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fleet)


def test_ports_need_no_address():
    hostvars = {"gpu-1": {"consumers_per_endpoint": 2}, "gpu-2": {}}

    consumers = fleet.fleet_consumer_ports(["gpu-1", "gpu-2"], hostvars, 8090)

    assert [(c["service"], c["host"], c["port"]) for c in consumers] == [
        ("consumer-1", "gpu-1", 8090),
        ("consumer-2", "gpu-1", 8091),
        ("consumer-3", "gpu-2", 8092),
    ]
    assert {c["base_url"] for c in consumers} == {None}


def test_consumers_match_ports_with_urls():
    hostvars = {
        "gpu-1": {
            "ollama_advertise_address": "192.0.2.11",
            "consumers_host_ports": [8063],
        },
        "gpu-2": {"ollama_advertise_address": "192.0.2.12"},
    }

    consumers = fleet.fleet_consumers(["gpu-1", "gpu-2"], hostvars, 8090)
    ports = fleet.fleet_consumer_ports(["gpu-1", "gpu-2"], hostvars, 8090)

    assert [c["port"] for c in consumers] == [c["port"] for c in ports] == [8063, 8090]
    assert consumers[1]["base_url"] == "http://192.0.2.12:11434"


def test_consumers_need_an_address():
    with pytest.raises(AnsibleFilterError, match="gpu-1: ollama_advertise_address"):
        fleet.fleet_consumers(
            ["gpu-1"], {"gpu-1": {"ollama_advertise_address": "0.0.0.0"}}
        )


@pytest.mark.parametrize(
    ("hostvars", "message"),
    [
        (
            {
                "gpu-1": {"consumers_host_ports": [8063]},
                "gpu-2": {"consumers_host_ports": [8063]},
            },
            "gpu-2: consumers_host_ports contains port 8063, which gpu-1 already uses",
        ),
        (
            {"gpu-1": {"consumers_per_endpoint": 0}, "gpu-2": {}},
            "gpu-1: consumers_per_endpoint is 0",
        ),
        (
            {"gpu-1": {}, "gpu-2": {"consumers_host_ports": "8063"}},
            "gpu-2: consumers_host_ports is '8063'; set it to a list",
        ),
        (
            {"gpu-1": {}, "gpu-2": {"consumers_host_ports": {8063: "x"}}},
            "gpu-2: consumers_host_ports is {8063: 'x'}; set it to a list",
        ),
        (
            {"gpu-1": {"consumers_per_endpoint": 60000}, "gpu-2": {}},
            "Lower consumers_first_port or consumers_per_endpoint",
        ),
    ],
    ids=[
        "shared-port",
        "zero-consumers",
        "port-not-a-list",
        "port-mapping",
        "ports-run-out",
    ],
)
def test_ports_reject_bad_settings(hostvars, message):
    with pytest.raises(AnsibleFilterError) as raised:
        fleet.fleet_consumer_ports(["gpu-1", "gpu-2"], hostvars, 8090)

    assert message in str(raised.value)
