"""Tests of the firewall role's filters and of the fleet table's firewalld summary."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from ansible.errors import AnsibleFilterError

REPO = Path(__file__).resolve().parents[2]
GATEWAY_RULE = (
    'rule family="ipv4" source address="10.89.200.1" '
    'port port="11434" protocol="tcp" accept'
)


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


firewalld = load(
    REPO / "roles" / "firewall" / "filter_plugins" / "firewalld_rules.py",
    "firewalld_rules",
)
sources = load(
    REPO / "roles" / "firewall" / "filter_plugins" / "firewall_sources.py",
    "firewall_sources",
)
fleet = load(REPO / "filter_plugins" / "fleet.py", "fleet_filters_firewall")


def test_rich_rules_per_family() -> None:
    rules = firewalld.firewall_firewalld_rich_rules(
        ["10.89.200.1/32", "2001:db8::/64"], 11434
    )
    assert rules[0] == GATEWAY_RULE
    assert rules[1] == (
        'rule family="ipv6" source address="2001:db8::/64" '
        'port port="11434" protocol="tcp" accept'
    )


def test_stale_rules_keep_listed_sources() -> None:
    listed = [
        GATEWAY_RULE,
        'rule family="ipv4" source address="192.0.2.99" port port="11434" '
        'protocol="tcp" accept',
        'rule family="ipv4" port port="11434" protocol="tcp" accept',
        'rule family="ipv4" source address="192.0.2.99" port port="22" '
        'protocol="tcp" accept',
        'rule family="ipv4" forward-port port="11434" protocol="tcp" to-port="80"',
    ]
    stale = firewalld.firewall_firewalld_stale_rules(listed, 11434, ["10.89.200.1"])
    assert stale == [listed[1], listed[2]]


def test_stale_rules_reject_text() -> None:
    with pytest.raises(AnsibleFilterError, match="list of rich rules"):
        firewalld.firewall_firewalld_stale_rules(GATEWAY_RULE, 11434, [])


def test_docker_host_sources_order() -> None:
    hostvars = {
        "listed": {"fleet_source_addresses": ["10.0.0.5"], "ansible_host": "10.0.0.9"},
        "by-address": {"ansible_host": "192.0.2.20"},
        "by-facts": {
            "ansible_host": "ingest.example.com",
            "ansible_facts": {"default_ipv4": {"address": "192.0.2.30"}},
        },
    }
    result = sources.firewall_docker_host_sources(list(hostvars), hostvars)
    assert result == ["10.0.0.5", "192.0.2.20", "192.0.2.30"]


def test_docker_host_without_address_named() -> None:
    with pytest.raises(AnsibleFilterError, match="^ingest-9: cannot tell"):
        sources.firewall_docker_host_sources(["ingest-9"], {"ingest-9": {}})


def test_docker_host_string_sources_rejected() -> None:
    hostvars = {"ingest-1": {"fleet_source_addresses": "192.0.2.20"}}
    with pytest.raises(AnsibleFilterError, match="^ingest-1: .*not a list"):
        sources.firewall_docker_host_sources(["ingest-1"], hostvars)


def test_interface_on_source_network() -> None:
    facts = {
        "interfaces": ["lo", "eth0", "eth1"],
        "default_ipv4": {"interface": "eth0"},
        "eth0": {"ipv4": {"address": "198.51.100.7", "netmask": "255.255.255.0"}},
        "eth1": {
            "ipv4": {"address": "10.89.200.2", "netmask": "255.255.255.0"},
            "ipv6": [{"address": "2001:db8:1::2", "prefix": "64"}],
        },
    }
    assert sources.firewall_source_interface(facts, ["10.89.200.1"]) == "eth1"
    assert sources.firewall_source_interface(facts, ["2001:db8:1::9"]) == "eth1"
    # A source behind a router: the default-route interface.
    assert sources.firewall_source_interface(facts, ["192.0.2.20"]) == "eth0"


def test_firewalld_summary_lists_sources() -> None:
    status = {"rc": 0, "stdout": f"public (active)\n  rich rules:\n\t{GATEWAY_RULE}\n"}
    summary = fleet.fleet_firewalld_summary(status, 11434)
    assert summary == "firewalld: 11434/tcp from 10.89.200.1"


def test_firewalld_summary_without_rule() -> None:
    status = {"rc": 0, "stdout": "public (active)\n  rich rules:\n"}
    assert fleet.fleet_firewalld_summary(status, 11434) == (
        "firewalld: no rule for 11434/tcp"
    )
    assert fleet.fleet_firewalld_summary({"rc": 252}, 11434) == (
        "firewalld not running"
    )
