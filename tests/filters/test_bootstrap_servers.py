"""fleet_bootstrap_servers: the broker list that preflight accepts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

FILTER_FILE = Path(__file__).resolve().parents[2] / "filter_plugins" / "fleet.py"
spec = importlib.util.spec_from_file_location("fleet_filters", FILTER_FILE)
fleet = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fleet)


@pytest.mark.parametrize(
    ("value", "servers"),
    [
        ("kafka-1.example.com:9092", ["kafka-1.example.com:9092"]),
        (
            "192.0.2.10:9092, kafka-2.example.com:19092",
            ["192.0.2.10:9092", "kafka-2.example.com:19092"],
        ),
        ("[2001:db8::1]:9092", ["[2001:db8::1]:9092"]),
    ],
)
def test_valid_servers_accepted(value, servers):
    assert fleet.fleet_bootstrap_servers(value, "ingest-1") == servers


@pytest.mark.parametrize(
    "value",
    [
        "kafka-1.example.com",
        "kafka-1.example.com:0",
        "kafka-1.example.com:65536",
        "2001:db8::1:9092",
        "kafka-1.example.com:9092,",
        "kafka-1.example.com:9092 kafka-2.example.com:9092",
    ],
)
def test_bad_entry_rejected(value):
    with pytest.raises(AnsibleFilterError) as error:
        fleet.fleet_bootstrap_servers(value, "ingest-1")

    assert str(error.value).startswith(
        "ingest-1: invalid kafka_bootstrap_servers entry"
    )
    assert repr(value) in str(error.value)


@pytest.mark.parametrize("value", [None, "", "  ", 9092, ["a:1"], {"a": 1}, True])
def test_bad_type_rejected(value):
    with pytest.raises(AnsibleFilterError) as error:
        fleet.fleet_bootstrap_servers(value, "ingest-1")

    assert str(error.value).startswith(
        f"ingest-1: kafka_bootstrap_servers is invalid: {value!r}"
    )
