"""Filters that shape fleet data from the inventory for the playbooks."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError, AnsibleUndefinedVariable
from jinja2 import Undefined
from jinja2.exceptions import UndefinedError

WILDCARD_ADDRESSES = {"0.0.0.0", "::", "[::]", ""}


def fleet_ollama_endpoints(hosts: list[str], hostvars: Any) -> list[dict[str, Any]]:
    """Build the Ollama endpoint of every GPU host as its name and base URL.

    The address is the host's ollama_advertise_address, the one consumers call,
    so a bind-only address such as 0.0.0.0 is rejected with the host's name.
    """
    return [
        {"name": name, "url": _ollama_base_url(name, hostvars[name])} for name in hosts
    ]


def _ollama_base_url(name: str, variables: Any) -> str:
    # The default is the host's ansible_default_ipv4 address, a fact that is
    # missing when the host was unreachable while facts were gathered. Ansible
    # then passes an Undefined value, or raises when the value is read.
    try:
        address = variables.get("ollama_advertise_address", "")
        if isinstance(address, Undefined):
            address._fail_with_undefined_error()
        address = str(address).strip()
    except (AnsibleUndefinedVariable, UndefinedError) as error:
        raise AnsibleFilterError(
            f"{name}: ollama_advertise_address is missing ({error}). Its "
            "default needs the host's facts, which were not gathered: check "
            "that the host is reachable, or set ollama_advertise_address for it "
            "in the inventory."
        ) from error
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

    return f"http://{host_part}:{port}"


def _int_setting(name: str, variable: str, value: Any, low: int, high: int) -> int:
    """Return `value` as an int between low and high, or raise naming the host."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    try:
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise AnsibleFilterError(
            f"{name}: {variable} is {value!r}; set it to a whole number from "
            f"{low} to {high}."
        )
    return number


def _fixed_ports(name: str, variables: Any, count: int) -> list[int]:
    """Return the host's consumers_host_ports, checked against its consumer count."""
    ports = variables.get("consumers_host_ports", [])
    if ports in (None, ""):
        return []
    if isinstance(ports, (str, int, Mapping)) or not hasattr(ports, "__iter__"):
        raise AnsibleFilterError(
            f"{name}: consumers_host_ports is {ports!r}; set it to a list of ports, "
            "one for each of the host's consumers, for example [8063]."
        )

    numbers = [
        _int_setting(name, "an entry of consumers_host_ports", port, 1, 65535)
        for port in ports
    ]
    if len(numbers) > count:
        raise AnsibleFilterError(
            f"{name}: consumers_host_ports lists {len(numbers)} ports but the host "
            f"has {count} consumer(s) (consumers_per_endpoint). List at most "
            f"{count} ports or raise consumers_per_endpoint."
        )
    return numbers


def fleet_consumers(
    hosts: list[str], hostvars: Any, first_port: Any = 8090
) -> list[dict[str, Any]]:
    """Build the list of consumers, the one source of their names, ids and ports.

    See _build_consumers; every consumer has its endpoint's base_url, so every
    GPU host needs an address (gathered facts or ollama_advertise_address).
    """
    return _build_consumers(hosts, hostvars, first_port, with_base_url=True)


def fleet_consumer_ports(
    hosts: list[str], hostvars: Any, first_port: Any = 8090
) -> list[dict[str, Any]]:
    """Check the consumer counts and host ports before any fact is gathered.

    Returns the consumers as fleet_consumers does, with base_url None, and
    raises the same errors for invalid counts and ports.
    """
    return _build_consumers(hosts, hostvars, first_port, with_base_url=False)


def _build_consumers(
    hosts: list[str], hostvars: Any, first_port: Any, with_base_url: bool
) -> list[dict[str, Any]]:
    """Build the consumers: names, Kafka client ids, endpoints and host ports.

    Every GPU host gets `consumers_per_endpoint` consumers (default 1), numbered
    from 1 across the fleet in inventory order, so appending a host keeps the
    existing consumers' names and ports. Each consumer is a dict with index,
    service (the Compose service name), instance_id (its Kafka client.id),
    host, base_url and port (its host port for /health).

    A host's `consumers_host_ports` fixes the ports of its first consumers; the
    others take the next free port from `first_port` on. Raises
    AnsibleFilterError naming the host and the value when a setting is invalid
    or two consumers would share a port.
    """
    start = _int_setting(
        "consumers_first_port", "consumers_first_port", first_port, 1, 65535
    )
    plans = []
    owners: dict[int, str] = {}
    for name in hosts:
        variables = hostvars[name]
        count = _int_setting(
            name,
            "consumers_per_endpoint",
            variables.get("consumers_per_endpoint", 1),
            1,
            65535,
        )
        fixed = _fixed_ports(name, variables, count)
        for port in fixed:
            if port in owners:
                raise AnsibleFilterError(
                    f"{name}: consumers_host_ports contains port {port}, which "
                    f"{owners[port]} already uses. Give every consumer its own port."
                )
            owners[port] = name
        base_url = _ollama_base_url(name, variables) if with_base_url else None
        plans.append((name, base_url, count, fixed))

    consumers: list[dict[str, Any]] = []
    next_port = start
    for name, base_url, count, fixed in plans:
        for slot in range(count):
            if slot < len(fixed):
                port = fixed[slot]
            else:
                while next_port in owners:
                    next_port += 1
                port = next_port
                next_port += 1
                if port > 65535:
                    raise AnsibleFilterError(
                        f"{name}: no host port left for consumer "
                        f"{len(consumers) + 1}: consumers_first_port {start} plus "
                        f"the fleet's consumers runs past 65535. Lower "
                        "consumers_first_port or consumers_per_endpoint."
                    )
                owners[port] = name
            index = len(consumers) + 1
            service = f"consumer-{index}"
            consumers.append(
                {
                    "index": index,
                    "service": service,
                    "instance_id": service,
                    "host": name,
                    "base_url": base_url,
                    "port": port,
                }
            )
    return consumers


BROKER_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]/]+):([0-9]{1,5})$")


def fleet_bootstrap_servers(value: Any, name: str) -> list[str]:
    """Check kafka_bootstrap_servers of host `name`; return its host:port entries.

    The value is the comma-separated text that Kafka clients take. A client
    given a list would receive its Python text, and one given a port above
    65535 wraps it, so both are rejected here with the host's name.
    """
    example = '"kafka-1.example.com:9092,kafka-2.example.com:9092"'
    if not isinstance(value, str) or not value.strip():
        raise AnsibleFilterError(
            f"{name}: kafka_bootstrap_servers is invalid: {value!r}. Set it to "
            f"the brokers as comma-separated host:port text, for example {example}"
        )
    servers = [server.strip() for server in value.split(",")]
    for server in servers:
        match = BROKER_ADDRESS.match(server)
        if not match or not 1 <= int(match.group(2)) <= 65535:
            raise AnsibleFilterError(
                f"{name}: invalid kafka_bootstrap_servers entry {server!r} in "
                f"{value!r}. Each entry must be host:port with a port from 1 to "
                "65535, with an IPv6 address in brackets ([2001:db8::1]:9092), "
                f"for example {example}"
            )
    return servers


def fleet_dotenv_quote(value: Any) -> str:
    """Quote a value for a Compose .env file so the container gets it unchanged.

    Docker Compose v2 reads a double-quoted .env value with backslash escapes for
    backslash and double quote, and replaces $$ with $ while it interpolates. A
    newline cannot be written this way, so it is rejected.
    """
    text = str(value)
    if "\n" in text or "\r" in text or "\0" in text:
        raise AnsibleFilterError(
            f"the value {text!r} contains a line break or NUL, which a Compose .env "
            "file cannot hold. Remove it from the value."
        )
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$")
    return f'"{escaped}"'


def _dotenv_unquote(value: str) -> str:
    """Reverse fleet_dotenv_quote for one value; an unquoted value is returned as is."""
    if len(value) < 2 or not (value.startswith('"') and value.endswith('"')):
        return value
    inner = value[1:-1].replace("$$", "$")
    return re.sub(r"\\(.)", r"\1", inner)


def fleet_deployed_consumer_counts(
    env_text: str, endpoints: list[dict[str, Any]]
) -> dict[str, int]:
    """Count the consumers that a deployed .env gives each endpoint.

    `env_text` is the consumers role's .env; each OLLAMA_BASE_URL_CONSUMER_<n>
    line is one consumer of the endpoint whose URL it names. Returns endpoint
    name to count, leaving out endpoints with no consumer in the file.
    """
    names = {
        str(endpoint["url"]).rstrip("/"): endpoint["name"] for endpoint in endpoints
    }
    counts: dict[str, int] = {}
    for line in str(env_text or "").splitlines():
        match = re.match(r"OLLAMA_BASE_URL_CONSUMER_\d+=(.*)$", line.strip())
        if not match:
            continue
        name = names.get(_dotenv_unquote(match.group(1)).rstrip("/"))
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    return counts


def fleet_firewalld_summary(status: dict[str, Any], port: int) -> str:
    """Summarise a registered `firewall-cmd --list-all-zones` result for the port.

    Returns, for example, "firewalld: 11434/tcp from 10.89.200.1" (sources of the
    rich rules that accept the port) or "firewalld not running".
    """
    if status.get("rc") != 0:
        return "firewalld not running"

    pattern = re.compile(
        r'rule family="ipv[46]" source address="([^"]+)" '
        rf'port port="{port}" protocol="tcp" accept'
    )
    sources = pattern.findall(status.get("stdout", ""))
    if not sources:
        return f"firewalld: no rule for {port}/tcp"
    return f"firewalld: {port}/tcp from {', '.join(dict.fromkeys(sources))}"


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


def fleet_gpu_summary(query: dict[str, Any]) -> str:
    """Summarise a registered `nvidia-smi --query-gpu=name,memory.total` result.

    Each output line reads "NVIDIA A100-SXM4-80GB, 81920 MiB". Equal GPUs are
    counted, as in "2x NVIDIA A100-SXM4-80GB (81920 MiB)". Returns "CPU" when the
    command is missing or failed, or printed no GPU.
    """
    if query.get("rc") != 0:
        return "CPU"

    counts: dict[str, int] = {}
    for line in query.get("stdout_lines", []):
        name, _, memory = line.partition(",")
        name = name.strip()
        if not name:
            continue
        label = f"{name} ({memory.strip()})" if memory.strip() else name
        counts[label] = counts.get(label, 0) + 1

    if not counts:
        return "CPU"
    return ", ".join(
        label if count == 1 else f"{count}x {label}" for label, count in counts.items()
    )


def fleet_model_digest_mismatches(hosts: list[str], hostvars: Any) -> list[str]:
    """List the models whose digest differs between GPU hosts, naming the hosts.

    Reads each host's ollama_model_digests fact ({name: digest}) that the ollama
    role sets. Hosts without the fact and digests that are None (check mode on a
    host that would pull) are left out.
    """
    digests_by_model: dict[str, dict[str, list[str]]] = {}
    for host in hosts:
        digests = hostvars[host].get("ollama_model_digests") or {}
        for model, digest in digests.items():
            if not digest:
                continue
            hosts_by_digest = digests_by_model.setdefault(model, {})
            hosts_by_digest.setdefault(digest, []).append(host)

    mismatches = []
    for model, hosts_by_digest in sorted(digests_by_model.items()):
        if len(hosts_by_digest) < 2:
            continue
        parts = [
            f"{digest} on {', '.join(sorted(names))}"
            for digest, names in sorted(hosts_by_digest.items())
        ]
        mismatches.append(f"{model}: {'; '.join(parts)}")
    return mismatches


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "fleet_ollama_endpoints": fleet_ollama_endpoints,
            "fleet_consumers": fleet_consumers,
            "fleet_consumer_ports": fleet_consumer_ports,
            "fleet_dotenv_quote": fleet_dotenv_quote,
            "fleet_bootstrap_servers": fleet_bootstrap_servers,
            "fleet_deployed_consumer_counts": fleet_deployed_consumer_counts,
            "fleet_ufw_summary": fleet_ufw_summary,
            "fleet_firewalld_summary": fleet_firewalld_summary,
            "fleet_gpu_summary": fleet_gpu_summary,
            "fleet_model_digest_mismatches": fleet_model_digest_mismatches,
        }
