"""The fleet report filters: data shaping and the Mermaid diagram."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "filter_plugins"))

from fleet_report import fleet_report_data, fleet_report_mermaid  # noqa: E402 (path above)

ENDPOINTS = [
    {"name": "gpu-1", "url": "http://192.0.2.1:11434"},
    {"name": "gpu-2", "url": "http://192.0.2.2:11434"},
]
HOSTVARS = {
    "gpu-1": {"fleet_gpu": "NVIDIA GeForce RTX 4090", "consumers_per_endpoint": 2},
    "gpu-2": {"fleet_firewall_summary": "ufw: 11434/tcp from 192.0.2.9"},
}
CONSUMERS = [
    {
        "service": "consumer-1",
        "instance_id": "consumer-1",
        "host": "gpu-1",
        "base_url": "http://192.0.2.1:11434",
        "port": 8090,
    },
    {
        "service": "consumer-2",
        "instance_id": "consumer-2",
        "host": "gpu-1",
        "base_url": "http://192.0.2.1:11434",
        "port": 8091,
    },
    {
        "service": "consumer-3",
        "instance_id": "consumer-3",
        "host": "gpu-2",
        "base_url": "http://192.0.2.2:11434",
        "port": 8092,
    },
]
KAFKA = {"bootstrap_servers": "kafka:9092", "topic": "t", "group": "g", "partitions": 4}


def health(port, partitions, status=200):
    return {
        "item": {"port": port},
        "status": status,
        "json": {"status": "running", "assigned_partitions": partitions},
    }


def build(verify=None, health_results=None, members=None):
    return fleet_report_data(
        ENDPOINTS,
        verify
        if verify is not None
        else [
            {"name": "gpu-1", "ok": True, "version": "0.32.14", "latency_ms": 3.0},
            {"name": "gpu-2", "ok": False, "error": "unreachable: refused"},
        ],
        HOSTVARS,
        CONSUMERS,
        health_results
        if health_results is not None
        else [health(8090, ["t[0]"]), health(8091, ["t[1]"]), health(8092, [], 0)],
        KAFKA,
        members,
    )


def test_endpoint_rows_have_gpu_and_status():
    report = build()

    first, second = report["endpoints"]
    assert first["gpu"] == "NVIDIA GeForce RTX 4090"
    assert first["ok"] is True
    assert first["consumers_per_endpoint"] == 2
    assert second["gpu"] == "unknown"
    assert second["error"] == "unreachable: refused"
    assert second["firewall"] == "ufw: 11434/tcp from 192.0.2.9"


def test_unhealthy_consumer_marks_report():
    report = build()

    assert [c["healthy"] for c in report["consumers"]] == [True, True, False]
    assert report["healthy"] is False


def test_partitions_from_health_when_group_unknown():
    report = build()

    assignment = {row["partition"]: row["consumer"] for row in report["partitions"]}
    assert assignment == {0: "consumer-1", 1: "consumer-2", 2: None, 3: None}


def test_broker_assignment_preferred():
    members = [
        {"client_id": "consumer-1", "partitions": ["t[3]"]},
        {"client_id": "consumer-3", "partitions": ["t[0]", "t[2]"]},
    ]

    report = build(members=members)

    by_name = {c["name"]: c["partitions"] for c in report["consumers"]}
    assert by_name["consumer-1"] == ["t[3]"]
    assert by_name["consumer-2"] == ["t[1]"]
    assert by_name["consumer-3"] == ["t[0]", "t[2]"]


def test_bare_port_items_matched():
    results = [
        {"item": 8090, "status": 200, "json": {"assigned_partitions": []}},
        {"item": 8091, "status": 200, "json": {}},
        {"item": 8092, "status": 200, "json": {}},
    ]

    report = build(health_results=results)

    assert all(c["healthy"] for c in report["consumers"])


def test_unknown_partition_count_gives_no_rows():
    report = fleet_report_data(
        ENDPOINTS, [], HOSTVARS, CONSUMERS, [], {**KAFKA, "partitions": None}
    )

    assert report["partitions"] == []
    assert report["healthy"] is False


def test_mermaid_links_consumers_to_endpoints():
    diagram = fleet_report_mermaid(build())

    assert diagram.startswith("flowchart LR")
    assert "kafka --> c1" in diagram
    assert "c1 --> e1" in diagram
    assert "c2 --> e1" in diagram
    assert "c3 --> e2" in diagram
    assert "GPU: NVIDIA GeForce RTX 4090" in diagram
    assert "partitions: 0" in diagram


def test_mermaid_escapes_quotes():
    hostvars = {**HOSTVARS, "gpu-1": {"fleet_gpu": 'Tesla "T4" <x>'}}
    report = fleet_report_data(ENDPOINTS, [], hostvars, CONSUMERS, [], KAFKA)

    diagram = fleet_report_mermaid(report)

    assert "GPU: Tesla 'T4' 'x'" in diagram


def test_unassigned_partition_marks_report():
    results = [health(8090, ["t[0]", "t[1]"]), health(8091, ["t[2]"]), health(8092, [])]
    verify = [{"name": "gpu-1", "ok": True}, {"name": "gpu-2", "ok": True}]

    report = build(verify=verify, health_results=results)

    assert all(c["healthy"] for c in report["consumers"])
    assert report["partitions"][3]["consumer"] is None
    assert report["healthy"] is False


def test_fully_assigned_fleet_is_healthy():
    results = [
        health(8090, ["t[0]", "t[1]"]),
        health(8091, ["t[2]"]),
        health(8092, ["t[3]"]),
    ]
    verify = [{"name": "gpu-1", "ok": True}, {"name": "gpu-2", "ok": True}]

    report = build(verify=verify, health_results=results)

    assert report["healthy"] is True
