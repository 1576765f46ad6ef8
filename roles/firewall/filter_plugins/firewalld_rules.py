"""Filters of the firewall role: firewalld rich rules for the Ollama port."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ansible.errors import AnsibleFilterError

# A rule as this role adds it, in the form firewalld prints it back
# (`firewall-cmd --list-rich-rules`).
_ROLE_RULE = re.compile(
    r'^rule family="(?P<family>ipv4|ipv6)" source address="(?P<source>[^"]+)" '
    r'port port="(?P<port>[^"]+)" protocol="tcp" accept$'
)

# The port element of any rich rule; "forward-port" and "source-port" do not match.
_PORT_ELEMENT = re.compile(r'(?:^| )port port="(?P<port>[^"]+)"')


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        return None


def _source_text(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """Return a single address without its /32 or /128, and a network in CIDR form."""
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def firewall_firewalld_rich_rules(sources: list[str], port: int | str) -> list[str]:
    """Return one rich rule per source that accepts TCP `port` from it.

    Each rule names its family, so IPv4 and IPv6 sources both work.
    """
    rules = []
    for source in sources:
        network = _network(source)
        if network is None:
            raise AnsibleFilterError(f"invalid source address {source!r}")
        family = f"ipv{network.version}"
        rules.append(
            f'rule family="{family}" source address="{_source_text(network)}" '
            f'port port="{port}" protocol="tcp" accept'
        )
    return rules


def firewall_firewalld_stale_rules(
    rich_rules: list[str], port: int | str, keep_sources: list[str]
) -> list[str]:
    """Return the rich rules for `port` that this role would not add.

    `rich_rules` are lines of `firewall-cmd --list-rich-rules`. A rule is kept when
    it has the form this role writes and its source is one of `keep_sources`
    (compared as networks, so 10.0.0.5 equals 10.0.0.5/32). Every other rule whose
    port element is `port` is returned, e.g. rules for consumer addresses that left
    the inventory or rules without a source.
    NOTE: rules that open the port through a range ("11000-12000") are not returned
    and stay in place.
    """
    if isinstance(rich_rules, str) or not isinstance(rich_rules, (list, tuple)):
        kind = type(rich_rules).__name__
        raise AnsibleFilterError(
            f"firewall_firewalld_stale_rules expects a list of rich rules, got {kind}"
        )

    allowed_networks = {_network(source) for source in keep_sources} - {None}
    stale = []
    for line in rich_rules:
        rule = line.strip()
        element = _PORT_ELEMENT.search(rule)
        if element is None or element.group("port") != str(port):
            continue

        match = _ROLE_RULE.match(rule)
        if match and _network(match.group("source")) in allowed_networks:
            continue
        if rule not in stale:
            stale.append(rule)
    return stale


class FilterModule:
    """Filters of the firewall role for firewalld."""

    def filters(self) -> dict[str, Any]:
        return {
            "firewall_firewalld_rich_rules": firewall_firewalld_rich_rules,
            "firewall_firewalld_stale_rules": firewall_firewalld_stale_rules,
        }
