"""Filters that shape fleet data from the inventory for the playbooks."""

from __future__ import annotations

import ipaddress
from typing import Any

from ansible.errors import AnsibleFilterError

WILDCARD_ADDRESSES = {"0.0.0.0", "::", "[::]", ""}


def fleet_ollama_endpoints(hosts: list[str], hostvars: Any) -> list[dict[str, Any]]:
    """Build the Ollama endpoint of every GPU host as its name and base URL.

    The address is the host's ollama_advertise_address, the one consumers call,
    so a bind-only address such as 0.0.0.0 is rejected with the host's name.
    """
    endpoints = []
    for name in hosts:
        variables = hostvars[name]
        address = str(variables.get("ollama_advertise_address", "")).strip()
        port = int(variables.get("ollama_port", 11434))

        if address in WILDCARD_ADDRESSES:
            raise AnsibleFilterError(
                f"{name}: ollama_advertise_address is {address!r}, which is not an "
                "address a client can connect to. Set it to the address the Docker "
                "hosts reach this host at, for example in host_vars or the inventory."
            )

        host_part = address
        try:
            if ipaddress.ip_address(address).version == 6:
                host_part = f"[{address}]"
        except ValueError:
            pass  # A DNS name, used as it is.

        endpoints.append({"name": name, "url": f"http://{host_part}:{port}"})
    return endpoints


def fleet_ufw_summary(status: dict[str, Any], port: int) -> str:
    """Summarise a registered `ufw status` result for the Ollama port.

    Returns, for example, "ufw: 11434/tcp from 10.89.200.1" or "ufw inactive".
    """
    if status.get("rc") != 0:
        return "ufw not available"

    lines = status.get("stdout_lines", [])
    if "Status: inactive" in lines:
        return "ufw inactive"

    # Rule lines read "11434/tcp  ALLOW  10.89.200.1  # comment", with "IN"
    # after ALLOW when the rule names a direction.
    sources = []
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) < 3 or fields[0] not in (str(port), f"{port}/tcp"):
            continue
        if fields[1] != "ALLOW":
            continue
        source = fields[3] if fields[2] == "IN" and len(fields) > 3 else fields[2]
        sources.append(source)
    if not sources:
        return f"ufw: no rule for {port}/tcp"
    return f"ufw: {port}/tcp from {', '.join(sources)}"


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "fleet_ollama_endpoints": fleet_ollama_endpoints,
            "fleet_ufw_summary": fleet_ufw_summary,
        }
