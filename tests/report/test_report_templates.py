"""The fleet table and report files, rendered by Ansible from given results.

The results take the place of what playbooks/verify.yml registers; the templates,
filters and tasks are the ones site.yml runs.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PLAYBOOK = Path(__file__).with_name("render.yml")


def consumer(number: int, host: str) -> dict[str, Any]:
    """Return one entry of fleet_consumers, as the fleet_consumers filter makes it."""
    return {
        "service": f"consumer-{number}",
        "instance_id": f"consumer-{number}",
        "host": host,
        "base_url": f"http://192.0.2.{number}:11434",
        "port": 8089 + number,
    }


RESULTS: dict[str, Any] = {
    "fleet_embedding_model": "nomic-embed-text",
    "kafka_bootstrap_servers": "kafka-1.example:9092",
    "kafka_topic": "files",
    "kafka_consumer_group": "ingest",
    "fleet_endpoints": [
        {"name": "gpu-1", "url": "http://192.0.2.1:11434"},
        {"name": "gpu-2", "url": "http://192.0.2.2:11434"},
    ],
    "fleet_verify": {
        "endpoints": [
            {
                "name": "gpu-1",
                "ok": True,
                "version": "0.32.14",
                "model": "nomic-embed-text:latest",
                "latency_ms": 3.21,
            },
            {"name": "gpu-2", "ok": True, "version": "0.32.14", "latency_ms": 4.0},
        ]
    },
    "fleet_consumers": [consumer(1, "gpu-1"), consumer(2, "gpu-2")],
    "fleet_consumer_health": {
        "results": [
            {
                "item": {"port": 8090},
                "status": 200,
                "json": {"status": "running", "assigned_partitions": ["files[0]"]},
            },
            {
                "item": {"port": 8091},
                "status": 200,
                "json": {"status": "running", "assigned_partitions": ["files[1]"]},
            },
        ]
    },
    "fleet_partitions": {"partitions": 2},
    # Tansu 0.6.0 lists the members but not their assignments.
    "fleet_group": {
        "members_known": True,
        "assignments_known": False,
        "members": [{"client_id": "consumer-1"}, {"client_id": "consumer-2"}],
    },
}


def run_report(tmp_path: Path, results: dict[str, Any]) -> tuple[str, Path]:
    """Run the report tasks; return ansible-playbook's output and the report dir."""
    out = tmp_path / "reports"
    inventory = {
        "all": {
            "hosts": {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": str(VENV_PYTHON),
                }
            },
            "children": {
                "ollama_hosts": {
                    "hosts": {
                        "gpu-1": {
                            "fleet_gpu": "NVIDIA GeForce RTX 4090",
                            "fleet_firewall_summary": "ufw: 11434/tcp from 192.0.2.9",
                        },
                        "gpu-2": {},
                    }
                }
            },
        }
    }
    (tmp_path / "hosts.yml").write_text(json.dumps(inventory))
    (tmp_path / "results.json").write_text(
        json.dumps({**results, "fleet_report_dir": str(out)})
    )
    env = dict(
        os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1"
    )
    completed = subprocess.run(
        [
            str(VENV_PYTHON.with_name("ansible-playbook")),
            "-i",
            str(tmp_path / "hosts.yml"),
            str(PLAYBOOK),
            "-e",
            f"@{tmp_path / 'results.json'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout, out


def table_lines(output: str) -> list[str]:
    """Return the fleet table's lines from ansible-playbook's YAML output."""
    start = output.index("Print the fleet table]")
    block = output[start : output.index("TASK [", start + 1)]
    return [line.strip() for line in block.splitlines()[3:] if line.strip()]


@pytest.fixture
def results() -> dict[str, Any]:
    return copy.deepcopy(RESULTS)


def test_table_shows_partitions_from_health(tmp_path, results):
    output, out = run_report(tmp_path, results)

    lines = table_lines(output)
    assert lines[0].split()[:3] == ["host", "endpoint", "gpu"]
    assert lines[1].startswith("gpu-1")
    assert "NVIDIA GeForce RTX 4090" in lines[1]
    assert lines[1].endswith("consumer-1 healthy p0")
    assert lines[2].endswith("consumer-2 healthy p1")
    assert "Kafka topic files: 2 partitions for 2 consumers, 2 assigned" in lines
    assert any("from each consumer's /health" in line for line in lines)
    assert "2 of 2 consumers healthy, 2 partitions on files" in " ".join(output.split())
    report = json.loads((out / "fleet-report.json").read_text())
    assert report["healthy"] is True
    assert [row["consumer"] for row in report["partitions"]] == [
        "consumer-1",
        "consumer-2",
    ]


def test_idle_consumer_is_named_idle(tmp_path, results):
    health = results["fleet_consumer_health"]["results"]
    health[0]["json"]["assigned_partitions"] = ["files[0]", "files[1]"]
    health[1]["json"]["assigned_partitions"] = []

    output, out = run_report(tmp_path, results)

    lines = table_lines(output)
    assert lines[1].endswith("consumer-1 healthy p0,p1")
    assert lines[2].endswith("consumer-2 idle")
    assert "1 of 2 consumers healthy (1 idle without a partition)" in " ".join(
        output.split()
    )
    report = json.loads((out / "fleet-report.json").read_text())
    assert report["healthy"] is False
    markdown = (out / "fleet-report.md").read_text()
    assert "| consumer-2 | consumer-2 |" in markdown
    assert "running (idle) | none |" in markdown


def test_broker_assignment_wins_over_health(tmp_path, results):
    results["fleet_group"] = {
        "members_known": True,
        "assignments_known": True,
        "members": [
            {"client_id": "consumer-1", "partitions": ["files[1]"]},
            {"client_id": "consumer-2", "partitions": ["files[0]"]},
        ],
    }

    output, _ = run_report(tmp_path, results)

    lines = table_lines(output)
    assert lines[1].endswith("consumer-1 healthy p1")
    assert lines[2].endswith("consumer-2 healthy p0")
    assert not any("does not report assignments" in line for line in lines)


def test_failed_endpoint_unreachable_consumer(tmp_path, results):
    results["fleet_verify"]["endpoints"][1] = {
        "name": "gpu-2",
        "ok": False,
        "error": "unreachable: connection refused",
    }
    results["fleet_consumer_health"]["results"][1] = {
        "item": {"port": 8091},
        "status": -1,
        "msg": "Connection refused",
    }

    output, out = run_report(tmp_path, results)

    lines = table_lines(output)
    assert "nomic-embed-text FAILED" in lines[2]
    assert lines[2].endswith("consumer-2 UNHEALTHY")
    assert "FAILED gpu-2: unreachable: connection refused" in lines
    markdown = (out / "fleet-report.md").read_text()
    assert "FAILED: unreachable: connection refused" in markdown
    assert "| 8091 | unreachable (UNHEALTHY) | not reported |" in markdown


def test_unreported_partitions_not_idle(tmp_path, results):
    # A user's own consumer image may serve /health without partitions.
    for probe in results["fleet_consumer_health"]["results"]:
        probe["json"] = {"status": "ok"}
    results["fleet_group"] = {"members_known": False, "msg": "no members listed"}

    output, out = run_report(tmp_path, results)

    lines = table_lines(output)
    assert lines[1].endswith("consumer-1 healthy")
    assert lines[2].endswith("consumer-2 healthy")
    assert any("members unknown (no members listed)" in line for line in lines)
    markdown = (out / "fleet-report.md").read_text()
    assert "| ok | not reported |" in markdown
