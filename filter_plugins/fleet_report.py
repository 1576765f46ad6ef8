"""Filters that shape the fleet report (playbooks/verify.yml) from task results."""

from __future__ import annotations

import re
from typing import Any


def _health_by_port(health_results: list[dict[str, Any]]) -> dict[int, dict]:
    """Map each probed /health port to its registered uri result.

    The loop item is a consumer from fleet_consumers or a bare port number.
    """
    by_port = {}
    for result in health_results or []:
        item = result.get("item")
        port = item.get("port") if isinstance(item, dict) else item
        try:
            by_port[int(port)] = result
        except (TypeError, ValueError):
            continue
    return by_port


def fleet_report_data(
    endpoints: list[dict[str, Any]],
    verify_results: list[dict[str, Any]],
    hostvars: Any,
    consumers: list[dict[str, Any]],
    health_results: list[dict[str, Any]],
    kafka: dict[str, Any],
    group_members: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Build the fleet report: endpoints, consumers and partitions.

    `endpoints` comes from fleet_ollama_endpoints, `verify_results` from
    ollama_verify, `consumers` from fleet_consumers, `health_results` from the
    uri loop over the consumers' /health ports and `group_members` from
    kafka_consumer_group_info. `kafka` contains bootstrap_servers, topic,
    group and partitions. A consumer's partitions are the broker's
    assignment when the group was read, else what its /health reports.
    """
    broker_assignment = {
        member.get("client_id"): list(member.get("partitions") or [])
        for member in group_members or []
    }
    verified = {result.get("name"): result for result in verify_results or []}
    endpoint_rows = []
    for endpoint in endpoints:
        result = verified.get(endpoint["name"], {})
        variables = hostvars[endpoint["name"]]
        endpoint_rows.append(
            {
                "name": endpoint["name"],
                "url": endpoint["url"],
                "gpu": str(variables.get("fleet_gpu") or "unknown"),
                "version": result.get("version"),
                "model": result.get("model"),
                "ok": bool(result.get("ok")),
                "latency_ms": result.get("latency_ms"),
                "error": result.get("error"),
                "firewall": variables.get("fleet_firewall_summary", "-"),
                "consumers_per_endpoint": int(
                    variables.get("consumers_per_endpoint", 1) or 1
                ),
            }
        )

    health = _health_by_port(health_results)
    consumer_rows = []
    assignment: dict[str, str] = {}
    for consumer in consumers:
        probe = health.get(int(consumer["port"]), {})
        body = probe.get("json") if isinstance(probe.get("json"), dict) else {}
        name = consumer.get("service") or consumer.get("name")
        instance_id = consumer.get("instance_id", name)
        if instance_id in broker_assignment:
            partitions = broker_assignment[instance_id]
            partitions_known = True
        else:
            partitions = list(body.get("assigned_partitions") or [])
            # Consumer images other than the reference one may not report them.
            partitions_known = isinstance(body.get("assigned_partitions"), list)
        healthy = probe.get("status") == 200
        for partition in partitions:
            assignment[partition] = name
        consumer_rows.append(
            {
                "name": name,
                "instance_id": instance_id,
                "endpoint": consumer["host"],
                "base_url": consumer["base_url"],
                "port": int(consumer["port"]),
                "healthy": healthy,
                "status": body.get("status", "unreachable"),
                "partitions": partitions,
                "partitions_known": partitions_known,
                # Up and in the group, but no partition to read from.
                "idle": healthy and partitions_known and not partitions,
                "counters": body.get("counters", {}),
            }
        )

    topic = kafka.get("topic", "")
    count = kafka.get("partitions")
    partition_rows = []
    if isinstance(count, int):
        for number in range(count):
            key = f"{topic}[{number}]"
            partition_rows.append(
                {"partition": number, "consumer": assignment.get(key)}
            )

    return {
        "kafka": {
            "bootstrap_servers": kafka.get("bootstrap_servers"),
            "topic": topic,
            "group": kafka.get("group"),
            "partitions": count,
        },
        "endpoints": endpoint_rows,
        "consumers": consumer_rows,
        "partitions": partition_rows,
        "healthy": all(row["ok"] for row in endpoint_rows)
        and all(row["healthy"] and not row["idle"] for row in consumer_rows)
        and all(row["consumer"] for row in partition_rows),
    }


def _label(text: Any) -> str:
    """Make text safe inside a quoted Mermaid label."""
    return re.sub(r'["<>]', "'", str(text))


def consumer_state(consumer: dict[str, Any]) -> str:
    """Name a consumer row's state: healthy, idle or UNHEALTHY."""
    if not consumer["healthy"]:
        return "UNHEALTHY"
    return "idle" if consumer.get("idle") else "healthy"


def partition_numbers(partitions: list[str]) -> list[str]:
    """Shorten "topic[3]" to "3", keeping other names as they are."""
    return [p.rsplit("[", 1)[-1].rstrip("]") for p in partitions]


def fleet_report_mermaid(report: dict[str, Any]) -> str:
    """Draw the fleet as a Mermaid flowchart: Kafka, consumers, endpoints."""
    kafka = report["kafka"]
    lines = [
        "flowchart LR",
        f'  kafka[("Kafka {_label(kafka["bootstrap_servers"])}<br/>'
        f'{_label(kafka["topic"])}<br/>{kafka["partitions"]} partitions")]',
        '  subgraph docker["Docker host: consumers"]',
    ]
    for number, consumer in enumerate(report["consumers"], start=1):
        partitions = ", ".join(partition_numbers(consumer["partitions"]))
        state = consumer_state(consumer)
        lines.append(
            f'    c{number}["{_label(consumer["name"])}<br/>partitions: '
            f'{partitions or "none"}<br/>{state}"]'
        )
    lines.append("  end")
    endpoint_ids = {}
    for number, endpoint in enumerate(report["endpoints"], start=1):
        endpoint_ids[endpoint["name"]] = f"e{number}"
        state = "ok" if endpoint["ok"] else "FAILED"
        lines.append(
            f'  e{number}["{_label(endpoint["name"])}<br/>{_label(endpoint["url"])}'
            f"<br/>GPU: {_label(endpoint['gpu'])}<br/>Ollama "
            f'{_label(endpoint["version"] or "-")} {state}"]'
        )
    for number, consumer in enumerate(report["consumers"], start=1):
        lines.append(f"  kafka --> c{number}")
        target = endpoint_ids.get(consumer["endpoint"])
        if target:
            lines.append(f"  c{number} --> {target}")
    return "\n".join(lines)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "fleet_report_data": fleet_report_data,
            "fleet_report_mermaid": fleet_report_mermaid,
            "fleet_consumer_state": consumer_state,
            "fleet_partition_numbers": partition_numbers,
        }
