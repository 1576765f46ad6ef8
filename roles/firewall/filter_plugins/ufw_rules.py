"""Filters of the firewall role: address checks and parsing of `ufw show added`."""

from __future__ import annotations

import ipaddress
import shlex
from typing import Any

from ansible.errors import AnsibleFilterError

# Rule keywords that are followed by one value.
_VALUE_TOKENS = {"on", "from", "to", "port", "proto", "comment", "app"}


def _parse_rule(line: str) -> dict[str, Any] | None:
    """Parse one `ufw ...` line into community.general.ufw options, or return None.

    Returns None for lines that are not rules, for route rules and for rules that
    name an application profile, because the firewall role never prunes those.
    """
    try:
        tokens = shlex.split(line)
    except ValueError:
        return None

    if len(tokens) < 3 or tokens[0] != "ufw" or tokens[1] == "route":
        return None

    rule: dict[str, Any] = {
        "rule": tokens[1],
        "direction": None,
        "interface": None,
        "from_ip": "any",
        "from_port": None,
        "to_ip": "any",
        "to_port": None,
        "proto": None,
    }
    rest = tokens[2:]

    # Simple syntax: "ufw allow 11434/tcp" or "ufw allow 11434".
    if len(rest) == 1 or (len(rest) == 3 and rest[1] == "comment"):
        port, _, proto = rest[0].partition("/")
        rule["to_port"] = port
        rule["proto"] = proto or None
        return rule

    # Full syntax: [in|out] [on IFACE] [log|log-all] [from A [port P]]
    # [to B [port Q]] [proto T] [comment C].
    target = None
    index = 0
    while index < len(rest):
        token = rest[index]
        if token in ("in", "out"):
            rule["direction"] = token
        elif token in ("log", "log-all"):
            pass
        elif token in _VALUE_TOKENS and index + 1 < len(rest):
            value = rest[index + 1]
            index += 1
            if token == "app":
                return None
            if token == "on":
                rule["interface"] = value
            elif token == "from":
                rule["from_ip"] = value
                target = "from_port"
            elif token == "to":
                rule["to_ip"] = value
                target = "to_port"
            elif token == "port" and target:
                rule[target] = value
            elif token == "proto":
                rule["proto"] = value
        else:
            return None
        index += 1

    return rule


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """Return `value` as an IP network (a bare address is a /32 or /128), or None."""
    try:
        return ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        return None


def firewall_invalid_networks(values: list[Any]) -> list[str]:
    """Return the entries of `values` that are not a usable source address.

    Valid entries are an IP address or a network in CIDR form. A /0 network is
    rejected too, because it would open the port to every address.
    """
    invalid = []
    for value in values:
        network = _network(value)
        if network is None or network.prefixlen == 0:
            invalid.append(str(value))
    return invalid


def firewall_ufw_stale_rules(
    show_added: str, port: int | str, keep_sources: list[str]
) -> list[dict[str, Any]]:
    """Return the incoming allow rules for `port` that this role would not add.

    The role adds "allow from SOURCE to any port PORT proto tcp" for each entry of
    `keep_sources`; every other incoming allow rule for `port` is returned.

    `show_added` is the stdout of `ufw show added`. Each rule is a dict of
    community.general.ufw options (rule, direction, interface, from_ip, from_port,
    to_ip, to_port, proto), so a task can delete it by passing them back with
    delete=true. Addresses are compared as networks, so 10.0.0.5 equals 10.0.0.5/32.
    NOTE: rules that open the port through a range ("11000:12000") or a list
    ("80,11434") are not returned and stay in place.
    """
    if not isinstance(show_added, str):
        kind = type(show_added).__name__
        raise AnsibleFilterError(
            f"firewall_ufw_stale_rules expects the text of `ufw show added`, got {kind}"
        )

    allowed_networks = {_network(source) for source in keep_sources} - {None}
    stale = []
    for line in show_added.splitlines():
        rule = _parse_rule(line.strip())
        if rule is None or rule["rule"] != "allow" or rule["direction"] == "out":
            continue
        if rule["to_port"] != str(port):
            continue

        added_by_role = (
            rule["proto"] == "tcp"
            and rule["to_ip"] == "any"
            and rule["interface"] is None
            and rule["from_port"] is None
            and _network(rule["from_ip"]) in allowed_networks
        )
        if not added_by_role:
            stale.append(rule)
    return stale


class FilterModule:
    """Filters of the firewall role."""

    def filters(self) -> dict[str, Any]:
        return {
            "firewall_invalid_networks": firewall_invalid_networks,
            "firewall_ufw_stale_rules": firewall_ufw_stale_rules,
        }
