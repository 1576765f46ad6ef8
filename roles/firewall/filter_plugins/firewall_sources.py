"""Filters of the firewall role: consumer addresses and the interface facing them."""

from __future__ import annotations

import ipaddress
from typing import Any

from ansible.errors import AnsibleFilterError


def _as_ip(value: Any) -> str | None:
    """Return `value` as a normalised IP address string, or None if it is not one."""
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        return None


def firewall_docker_host_sources(hosts: list[str], hostvars: Any) -> list[str]:
    """Return the addresses the GPU hosts see each Docker host's connections come from.

    For each host: its fleet_source_addresses when set, else its ansible_host when
    that is an IP address, else the IPv4 address of its default route from gathered
    facts. Raises AnsibleFilterError naming the host when none of them is available.
    """
    sources: list[str] = []
    for name in hosts:
        variables = hostvars[name]
        listed = variables.get("fleet_source_addresses")
        if listed is not None:
            if isinstance(listed, str) or not isinstance(listed, (list, tuple)):
                raise AnsibleFilterError(
                    f"{name}: fleet_source_addresses is {listed!r}, not a list. "
                    "Set it to a list of the addresses the GPU hosts see this Docker "
                    "host's connections come from, e.g. ['192.0.2.20']."
                )
            if not listed:
                raise AnsibleFilterError(
                    f"{name}: fleet_source_addresses is an empty list, so no rule "
                    "would admit this Docker host. List its addresses, or remove the "
                    "variable to use its ansible_host or default IPv4 address."
                )
            sources.extend(str(item).strip() for item in listed)
            continue

        connect_address = _as_ip(variables.get("ansible_host", ""))
        if connect_address:
            sources.append(connect_address)
            continue

        facts = variables.get("ansible_facts") or {}
        default_ipv4 = (facts.get("default_ipv4") or {}).get("address")
        if default_ipv4:
            sources.append(str(default_ipv4))
            continue

        raise AnsibleFilterError(
            f"{name}: cannot tell which address the GPU hosts see this Docker host "
            "connect from: fleet_source_addresses is not set, ansible_host is not an "
            "IP address and no default IPv4 address was gathered. Set "
            "fleet_source_addresses for it, or gather its network facts in the same "
            "play (playbooks/ollama.yml does)."
        )
    return sources


def _interface_networks(
    facts: dict[str, Any], interface: str
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Return the networks of an interface's IPv4 and IPv6 addresses from facts."""
    details = facts.get(interface.replace("-", "_")) or facts.get(interface) or {}
    networks = []

    ipv4_entries = []
    if isinstance(details.get("ipv4"), dict):
        ipv4_entries.append(details["ipv4"])
    ipv4_entries.extend(details.get("ipv4_secondaries") or [])
    for entry in ipv4_entries:
        if entry.get("address") and entry.get("netmask"):
            networks.append(
                ipaddress.ip_network(
                    f"{entry['address']}/{entry['netmask']}", strict=False
                )
            )

    for entry in details.get("ipv6") or []:
        if entry.get("address") and entry.get("prefix"):
            address = str(entry["address"]).split("%", 1)[0]
            networks.append(
                ipaddress.ip_network(f"{address}/{entry['prefix']}", strict=False)
            )
    return networks


def firewall_source_interface(facts: dict[str, Any], sources: list[str]) -> str:
    """Return the interface whose network contains one of `sources`.

    `facts` is the host's ansible_facts with the network subset. The first source
    that lies on a directly attached network decides. When none does, because the
    Docker hosts are behind a router, the interface of the default IPv4 route is
    returned, else that of the default IPv6 route. Raises AnsibleFilterError when
    no interface can be found.
    """
    interfaces = [name for name in facts.get("interfaces") or [] if name != "lo"]
    for source in sources:
        try:
            source_network = ipaddress.ip_network(str(source).strip(), strict=False)
        except ValueError:
            continue
        for interface in interfaces:
            for network in _interface_networks(facts, interface):
                if network.version != source_network.version:
                    continue
                if source_network.subnet_of(network) or network.subnet_of(
                    source_network
                ):
                    return interface

    for key in ("default_ipv4", "default_ipv6"):
        interface = (facts.get(key) or {}).get("interface")
        if interface:
            return str(interface)

    raise AnsibleFilterError(
        "no interface is on the network of the sources "
        f"{', '.join(map(str, sources))} and the host has no default route; set "
        "firewall_zone to the firewalld zone that faces the Docker hosts"
    )


class FilterModule:
    """Filters of the firewall role for sources and interfaces."""

    def filters(self) -> dict[str, Any]:
        return {
            "firewall_docker_host_sources": firewall_docker_host_sources,
            "firewall_source_interface": firewall_source_interface,
        }
