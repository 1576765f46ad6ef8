"""benchmarks/ingestion.py: event building, percentiles and a small real run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
SCRIPT = REPOSITORY / "benchmarks" / "ingestion.py"


def load_script():
    spec = importlib.util.spec_from_file_location("ingestion_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules.
    sys.modules["ingestion_benchmark"] = module
    spec.loader.exec_module(module)
    return module


ingestion = load_script()


def test_bulk_ingestion_is_79_events():
    events = ingestion.build_events(1962, 25, 5)

    documents = [json.loads(event) for event in events]
    assert len(events) == 79
    assert [len(d["files"]) for d in documents[:2]] == [25, 25]
    assert len(documents[-1]["files"]) == 1962 - 78 * 25
    assert documents[0]["files"][0]["path"] == "src/module_0.py"


def test_histogram_percentile_interpolates():
    bounds = [0.1, 0.2, "+Inf"]

    assert ingestion.histogram_percentile(bounds, [0, 10, 0], 0.5) == pytest.approx(
        0.15
    )
    assert ingestion.histogram_percentile(bounds, [0, 0, 0], 0.5) is None
    assert ingestion.histogram_percentile(bounds, [0, 0, 4], 0.95) == 0.2


def metrics(events, ok, embeddings, read_timeouts=0, counts=None):
    return {
        "counters": {
            "events": events,
            "ok": ok,
            "embeddings": embeddings,
            "read_timeout": read_timeouts,
            "pool_timeout": 0,
            "http_503": 0,
            "busy": 0,
            "rejected": 0,
            "error": 0,
            "invalid": 0,
        },
        "timeouts": read_timeouts,
        "latency_seconds": {
            "buckets": [1.0, "+Inf"],
            "counts": counts or [ok, 0],
            "p50": 0.5,
            "p95": 0.9,
        },
        "settings": {"ollama_base_url": "http://gpu-1:11434"},
    }


def test_summarise_uses_deltas():
    before = [metrics(10, 10, 250)]
    after = [metrics(20, 19, 475, read_timeouts=1, counts=[19, 0])]

    rows, total = ingestion.summarise(["consumer-1"], before, after, 5.0)

    assert rows[0]["events"] == 10
    assert rows[0]["embeddings"] == 225
    assert rows[0]["read_timeouts"] == 1
    assert rows[0]["percentiles"] == "histogram estimate"
    assert total["embeddings_per_second"] == 45.0


def test_compare_run_against_emulators(ollama, kafka, tmp_path):
    first = ollama({"OLLAMA_EMULATOR_EMBED_ITEM_SECONDS": "0.004"})
    second = ollama({"OLLAMA_EMULATOR_EMBED_ITEM_SECONDS": "0.001"})
    output = tmp_path / "result.json"

    completed = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "compare",
            "--bootstrap",
            kafka,
            "--endpoint",
            f"slow={first}",
            "--endpoint",
            f"fast={second}",
            "--files",
            "100",
            "--words",
            "5",
            "--weighted",
            "--capacity-seconds",
            "0.3",
            "--timeout",
            "120",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(output.read_text())
    names = [result["scenario"] for result in report["results"]]
    assert names == [
        "1 endpoint (slow)",
        "2 endpoints, equal split",
        "2 endpoints, weighted",
    ]
    for result in report["results"]:
        assert result["complete"] is True
        assert result["total"]["events"] == 4
        assert result["total"]["embeddings"] == 100
        assert result["total"]["timeouts"] == 0
        assert result["total"]["errors"] == 0
    assert report["capacities"][0]["consumers"] == 1
    assert "x 1 endpoint (slow)" in completed.stdout


def run_script(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_fleet_run_from_fleet_report(ollama, kafka, tmp_path):
    endpoint = ollama({"OLLAMA_EMULATOR_EMBED_ITEM_SECONDS": "0.001"})
    topic = "fleet-files"
    ingestion.create_topic(kafka, topic, 2)
    scenario = ingestion.Scenario("fleet", [("gpu-1", endpoint, 2)])
    consumers = ingestion.start_consumers(
        scenario, kafka, topic, "fleet-group", "nomic-embed-text", 2, 30, tmp_path
    )
    try:
        ingestion.wait_for_assignment(consumers, 2)
        report = {
            "kafka": {"bootstrap_servers": kafka, "topic": topic, "group": "g"},
            "consumers": [
                {"name": c.name, "port": int(c.metrics_url.split(":")[2].split("/")[0])}
                for c in consumers
            ],
        }
        (tmp_path / "fleet-report.json").write_text(json.dumps(report))
        output = tmp_path / "result.json"

        completed = run_script(
            "fleet",
            "--fleet-report",
            str(tmp_path / "fleet-report.json"),
            "--files",
            "100",
            "--words",
            "5",
            "--timeout",
            "120",
            "--output",
            str(output),
        )
    finally:
        ingestion.stop_consumers(consumers)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(output.read_text())["results"][0]
    assert result["complete"] is True
    assert result["total"]["events"] == 4
    assert "fleet: 4 events in" in completed.stdout
    assert "x fleet" not in completed.stdout
    assert [row["consumer"] for row in result["consumers"]] == [
        c.name for c in consumers
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["fleet", "--topic", "t"], "needs --bootstrap, --topic and --metrics-url"),
        (["fleet", "--fleet-report", "/nonexistent.json"], "reading the fleet from"),
    ],
)
def test_fleet_mode_rejects_missing_input(arguments, message):
    completed = run_script(*arguments)

    assert completed.returncode == 1
    assert message in completed.stderr
