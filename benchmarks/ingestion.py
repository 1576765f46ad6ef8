#!/usr/bin/env python3
"""Bulk ingestion benchmark: events/s, embeddings/s, latency, timeouts, 503s.

Produces a bulk ingestion to Kafka like a real one: by default 1,962 files in
events of 25 files, so 79 events, in the format of lab/consumer/README.md. It
waits until the consumers have handled every event. Then it reports per
consumer and in total: events/s, embeddings/s, p50 and p95 latency, timeouts,
503s and errors. The counts come from each consumer's /metrics, read before
and after.

Two modes:

compare
    Starts reference consumers (lab/consumer/app.py) as local processes and runs
    the same ingestion against one endpoint, against every endpoint with one
    consumer each, and (with --weighted) against every endpoint with consumers
    in proportion to its measured capacity. Prints the scenarios side by side
    and the throughput ratio to the first. Each scenario gets its own topic and
    consumer group; the consumers are stopped by their process id at the end.

fleet
    Measures consumers that already run, such as a real fleet's: produces to
    their topic and reads the /metrics URLs given with --metrics-url, or the
    topic, bootstrap servers and consumer ports of a fleet-report.json.

Run it with the controller's venv, which has confluent-kafka and httpx:

    .venv/bin/python benchmarks/ingestion.py compare \
        --fleet-report reports/bench/fleet-report.json --weighted
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

REPOSITORY = Path(__file__).resolve().parents[1]
# The tests and this script share the process helpers in tests/.
sys.path.insert(0, str(REPOSITORY / "tests"))

from local_processes import free_port, stop_processes  # noqa: E402 (path above)

CONSUMER_APP = REPOSITORY / "lab" / "consumer" / "app.py"
DEFAULT_OUTPUT_DIR = REPOSITORY / "reports" / "benchmarks"

# Seconds a consumer may take to join its group and get a partition; Tansu
# delays the first join by about half the session timeout.
ASSIGNMENT_TIMEOUT = 60.0
# Session timeout of the benchmark's own consumers, in milliseconds.
SESSION_TIMEOUT_MS = 6000
# httpx timeouts for reading /metrics, in seconds.
METRICS_TIMEOUT = httpx.Timeout(connect=2.0, read=5.0, write=5.0, pool=2.0)


class BenchmarkError(Exception):
    """A step of the benchmark failed; the message names the step and the fix."""


@dataclass
class Scenario:
    """A named set of consumers: (endpoint name, base URL, consumer count)."""

    name: str
    endpoints: list[tuple[str, str, int]]

    @property
    def consumer_count(self) -> int:
        return sum(count for _, _, count in self.endpoints)


@dataclass
class LocalConsumer:
    """A reference consumer process started by the benchmark."""

    name: str
    endpoint: str
    metrics_url: str
    process: subprocess.Popen
    log_path: Path


@dataclass
class RunResult:
    """The outcome of one ingestion run."""

    scenario: str
    events: int
    wall_seconds: float
    complete: bool
    consumers: list[dict[str, Any]] = field(default_factory=list)
    total: dict[str, Any] = field(default_factory=dict)


# --- Events -------------------------------------------------------------------


def file_content(number: int, words: int) -> str:
    """Return a synthetic source file of `words` words, distinct per number."""
    return " ".join(f"token{(number * 31 + word) % 4093}" for word in range(words))


def build_events(files: int, batch_size: int, words: int) -> list[bytes]:
    """Split `files` synthetic files into events of at most batch_size files."""
    events = []
    for first in range(0, files, batch_size):
        batch = [
            {"path": f"src/module_{number}.py", "content": file_content(number, words)}
            for number in range(first, min(first + batch_size, files))
        ]
        document = {"batch_id": f"bench-{first // batch_size:04d}", "files": batch}
        events.append(json.dumps(document).encode())
    return events


def produce(
    bootstrap: str, topic: str, events: list[bytes], partitions: int | None
) -> float:
    """Send events; return the time.time() just before the first send.

    With `partitions`, event n goes to partition n % partitions so the load is
    spread evenly; without, the producer's partitioner picks by key.
    """
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    started = time.time()
    for number, value in enumerate(events):
        if partitions:
            producer.produce(
                topic, key=str(number), value=value, partition=number % partitions
            )
        else:
            producer.produce(topic, key=str(number), value=value)
        producer.poll(0)
    remaining = producer.flush(30)
    if remaining:
        raise BenchmarkError(
            f"{remaining} events were not delivered to {topic} at {bootstrap} "
            "within 30 s; check that the broker is up"
        )
    return started


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    future = admin.create_topics([NewTopic(topic, partitions, 1)])[topic]
    try:
        future.result(timeout=15)
    except Exception as error:  # confluent-kafka raises KafkaException here
        raise BenchmarkError(
            f"creating topic {topic} with {partitions} partitions at {bootstrap} "
            f"failed: {error}"
        ) from error


# --- Metrics ------------------------------------------------------------------


def read_metrics(url: str) -> dict[str, Any]:
    try:
        response = httpx.get(url, timeout=METRICS_TIMEOUT)
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise BenchmarkError(
            f"reading {url} failed: {error!r}; check that the consumer runs and "
            "serves /metrics (lab/consumer/app.py does)"
        ) from error


def counter_delta(before: dict, after: dict, name: str) -> int:
    return after["counters"].get(name, 0) - before["counters"].get(name, 0)


def histogram_percentile(
    bounds: list[Any], counts: list[int], fraction: float
) -> float | None:
    """Estimate a percentile from histogram counts by linear interpolation."""
    total = sum(counts)
    if total == 0:
        return None
    target = fraction * total
    seen = 0
    lower = 0.0
    for bound, count in zip(bounds, counts, strict=True):
        upper = float("inf") if bound == "+Inf" else float(bound)
        if count and seen + count >= target:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (target - seen) / count
        seen += count
        lower = upper
    return lower


def latency_percentiles(before: dict, after: dict) -> tuple[Any, Any, str]:
    """Return p50 and p95 of the run and how they were computed.

    A consumer that handled nothing before the run has exact percentiles of
    the run in /metrics; otherwise they are estimated from the histogram delta.
    """
    if before["counters"]["events"] == 0:
        latency = after["latency_seconds"]
        return latency["p50"], latency["p95"], "exact"
    bounds = after["latency_seconds"]["buckets"]
    counts = [
        new - old
        for new, old in zip(
            after["latency_seconds"]["counts"],
            before["latency_seconds"]["counts"],
            strict=True,
        )
    ]
    return (
        histogram_percentile(bounds, counts, 0.50),
        histogram_percentile(bounds, counts, 0.95),
        "histogram estimate",
    )


def summarise(
    names: list[str],
    before: list[dict],
    after: list[dict],
    wall_seconds: float,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Build one row per consumer and a total row from /metrics deltas."""
    rows = []
    for name, old, new in zip(names, before, after, strict=True):
        p50, p95, method = latency_percentiles(old, new)
        failures = sum(
            counter_delta(old, new, kind)
            for kind in ("busy", "rejected", "error", "invalid")
        )
        rows.append(
            {
                "consumer": name,
                "endpoint": new.get("settings", {}).get("ollama_base_url", "-"),
                "events": counter_delta(old, new, "events"),
                "embeddings": counter_delta(old, new, "embeddings"),
                "pool_timeouts": counter_delta(old, new, "pool_timeout"),
                "read_timeouts": counter_delta(old, new, "read_timeout"),
                "timeouts": new["timeouts"] - old["timeouts"],
                "http_503": counter_delta(old, new, "http_503"),
                "errors": failures,
                "p50_seconds": p50,
                "p95_seconds": p95,
                "percentiles": method,
            }
        )
    for row in rows:
        row["events_per_second"] = row["events"] / wall_seconds
        row["embeddings_per_second"] = row["embeddings"] / wall_seconds

    total: dict[str, Any] = {"consumer": "total", "endpoint": ""}
    for key in (
        "events",
        "embeddings",
        "pool_timeouts",
        "read_timeouts",
        "timeouts",
        "http_503",
        "errors",
    ):
        total[key] = sum(row[key] for row in rows)
    total["events_per_second"] = total["events"] / wall_seconds
    total["embeddings_per_second"] = total["embeddings"] / wall_seconds
    # The slowest consumer bounds the run, so its percentiles are the total's.
    total["p50_seconds"] = max((r["p50_seconds"] or 0 for r in rows), default=None)
    total["p95_seconds"] = max((r["p95_seconds"] or 0 for r in rows), default=None)
    return rows, total


def wait_until_consumed(
    urls: list[str], before: list[dict], expected: int, timeout: float
) -> tuple[list[dict], bool]:
    """Poll /metrics until the consumers finished `expected` new events.

    An event counts as finished when it got an outcome, failed ones included.
    Returns the last readings and whether every event finished in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        after = [read_metrics(url) for url in urls]
        finished = sum(
            sum(counter_delta(old, new, outcome) for outcome in OUTCOMES)
            for old, new in zip(before, after, strict=True)
        )
        if finished >= expected:
            return after, True
        if time.monotonic() > deadline:
            return after, False
        time.sleep(0.25)


# Every outcome the reference consumer counts, one per finished event.
OUTCOMES = (
    "ok",
    "pool_timeout",
    "read_timeout",
    "connect_timeout",
    "write_timeout",
    "busy",
    "rejected",
    "error",
    "invalid",
)


def run_ingestion(
    scenario: str,
    names: list[str],
    urls: list[str],
    bootstrap: str,
    topic: str,
    events: list[bytes],
    partitions: int | None,
    timeout: float,
) -> RunResult:
    """Produce the events, wait for the consumers and summarise their metrics."""
    before = [read_metrics(url) for url in urls]
    started = produce(bootstrap, topic, events, partitions)
    after, complete = wait_until_consumed(urls, before, len(events), timeout)
    finished = [m["last_event_at"] for m in after if m.get("last_event_at")]
    wall = max(max(finished, default=started) - started, 1e-3)
    rows, total = summarise(names, before, after, wall)
    return RunResult(scenario, len(events), wall, complete, rows, total)


# --- Local consumers ------------------------------------------------------------


def start_consumers(
    scenario: Scenario,
    bootstrap: str,
    topic: str,
    group: str,
    model: str,
    concurrency: int,
    read_timeout: float,
    log_dir: Path,
) -> list[LocalConsumer]:
    consumers = []
    for endpoint_name, base_url, count in scenario.endpoints:
        for _ in range(count):
            name = f"bench-consumer-{len(consumers) + 1}"
            port = free_port()
            environment = {
                **os.environ,
                "OLLAMA_BASE_URL": base_url,
                "OLLAMA_MODEL": model,
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "KAFKA_TOPIC": topic,
                "KAFKA_CONSUMER_GROUP": group,
                "KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
                "INSTANCE_ID": name,
                "CONSUMER_CONCURRENCY": str(concurrency),
                "HTTP_READ_TIMEOUT": str(read_timeout),
                "HEALTH_ADDRESS": "127.0.0.1",
                "HEALTH_PORT": str(port),
            }
            log_path = log_dir / f"{topic}-{name}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, str(CONSUMER_APP)],
                    env=environment,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            consumers.append(
                LocalConsumer(
                    name,
                    endpoint_name,
                    f"http://127.0.0.1:{port}/metrics",
                    process,
                    log_path,
                )
            )
    return consumers


def stop_consumers(consumers: list[LocalConsumer]) -> None:
    """Stop the benchmark's own consumer processes by their process id."""
    stop_processes([consumer.process for consumer in consumers], timeout=30)


def wait_for_assignment(consumers: list[LocalConsumer], partitions: int) -> None:
    """Wait until every partition of the topic is assigned to some consumer."""
    deadline = time.monotonic() + ASSIGNMENT_TIMEOUT
    while time.monotonic() < deadline:
        assigned = 0
        for consumer in consumers:
            if consumer.process.poll() is not None:
                raise BenchmarkError(
                    f"consumer {consumer.name} exited with "
                    f"{consumer.process.returncode}; see {consumer.log_path}"
                )
            try:
                metrics = httpx.get(consumer.metrics_url, timeout=METRICS_TIMEOUT)
                assigned += len(metrics.json()["assigned_partitions"])
            except (httpx.HTTPError, ValueError, KeyError):
                pass
        if assigned == partitions:
            return
        time.sleep(0.5)
    raise BenchmarkError(
        f"the consumers did not get all {partitions} partitions within "
        f"{ASSIGNMENT_TIMEOUT:.0f} s; see the logs under {consumers[0].log_path.parent}"
    )


def run_scenario(
    scenario: Scenario, arguments: argparse.Namespace, run_id: str, log_dir: Path
) -> RunResult:
    slug = scenario.name.replace(" ", "-").replace(",", "")
    topic = f"bench.ingestion.{run_id}.{slug}"
    partitions = scenario.consumer_count
    create_topic(arguments.bootstrap, topic, partitions)
    consumers = start_consumers(
        scenario,
        arguments.bootstrap,
        topic,
        f"bench-{run_id}-{slug}",
        arguments.model,
        arguments.concurrency,
        arguments.read_timeout,
        log_dir,
    )
    try:
        wait_for_assignment(consumers, partitions)
        events = build_events(arguments.files, arguments.batch_size, arguments.words)
        return run_ingestion(
            scenario.name,
            [f"{c.name} ({c.endpoint})" for c in consumers],
            [c.metrics_url for c in consumers],
            arguments.bootstrap,
            topic,
            events,
            partitions,
            arguments.timeout,
        )
    finally:
        stop_consumers(consumers)


# --- Endpoints and capacity ---------------------------------------------------


def read_endpoints(arguments: argparse.Namespace) -> list[tuple[str, str]]:
    """Return (name, base URL) pairs from --endpoint and --fleet-report."""
    endpoints = []
    for text in arguments.endpoint or []:
        name, separator, url = text.partition("=")
        if not separator or not url.startswith(("http://", "https://")):
            raise BenchmarkError(
                f"--endpoint {text!r} is invalid; write NAME=URL, for example "
                "gpu-1=http://192.0.2.10:11434"
            )
        endpoints.append((name, url.rstrip("/")))
    if arguments.fleet_report:
        endpoints += read_fleet_report(
            arguments.fleet_report,
            "endpoints",
            lambda report: [(e["name"], e["url"]) for e in report["endpoints"]],
        )
    if not endpoints:
        raise BenchmarkError("no endpoints; pass --endpoint NAME=URL or --fleet-report")
    return endpoints


def measure_capacities(
    endpoints: list[tuple[str, str]], arguments: argparse.Namespace
) -> list[dict[str, Any]]:
    """Measure each endpoint with the ollama_capacity module's functions."""
    import ansible.module_utils

    module_utils = str(REPOSITORY / "module_utils")
    if module_utils not in ansible.module_utils.__path__:
        ansible.module_utils.__path__.append(module_utils)
    sys.path.insert(0, str(REPOSITORY / "library"))
    import ollama_capacity

    return ollama_capacity.measure_fleet(
        [{"name": name, "url": url} for name, url in endpoints],
        arguments.model,
        arguments.capacity_seconds,
        arguments.batch_size,
        arguments.words,
        arguments.max_consumers_per_endpoint,
        120.0,
    )


# --- Output -----------------------------------------------------------------------


def format_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def format_table(results: list[RunResult]) -> str:
    header = [
        "scenario",
        "consumer",
        "events",
        "events/s",
        "embeddings/s",
        "p50",
        "p95",
        "pool timeouts",
        "read timeouts",
        "503s",
        "errors",
    ]
    rows = [header]
    for result in results:
        for row in [*result.consumers, result.total]:
            rows.append(
                [
                    result.scenario if row is result.total else "",
                    row["consumer"],
                    str(row["events"]),
                    f"{row['events_per_second']:.2f}",
                    f"{row['embeddings_per_second']:.1f}",
                    format_seconds(row["p50_seconds"]),
                    format_seconds(row["p95_seconds"]),
                    str(row["pool_timeouts"]),
                    str(row["read_timeouts"]),
                    str(row["http_503"]),
                    str(row["errors"]),
                ]
            )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    baseline = results[0].total["embeddings_per_second"]
    lines.append("")
    for result in results:
        state = "" if result.complete else "  INCOMPLETE: timed out"
        ratio = result.total["embeddings_per_second"] / baseline if baseline else 0
        # A ratio needs a second scenario to compare with the first.
        versus = f", {ratio:.2f}x {results[0].scenario}" if len(results) > 1 else ""
        lines.append(
            f"{result.scenario}: {result.events} events in "
            f"{result.wall_seconds:.1f} s, "
            f"{result.total['embeddings_per_second']:.1f} embeddings/s"
            f"{versus}{state}"
        )
    return "\n".join(lines)


def write_output(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nresults written to {path}")


# --- Commands -----------------------------------------------------------------


def command_compare(arguments: argparse.Namespace) -> list[RunResult]:
    endpoints = read_endpoints(arguments)
    single = endpoints[arguments.single_endpoint - 1]
    scenarios = [
        Scenario(f"1 endpoint ({single[0]})", [(*single, 1)]),
        Scenario(
            f"{len(endpoints)} endpoints, equal split",
            [(name, url, 1) for name, url in endpoints],
        ),
    ]
    capacities: list[dict[str, Any]] = []
    if arguments.weighted:
        capacities = measure_capacities(endpoints, arguments)
        for capacity in capacities:
            print(
                f"capacity {capacity['name']}: "
                f"{capacity['embeddings_per_second']:.1f} embeddings/s "
                f"sequentially, {capacity['consumers']} consumer(s)"
            )
        scenarios.append(
            Scenario(
                f"{len(endpoints)} endpoints, weighted",
                [(c["name"], c["url"], c["consumers"]) for c in capacities],
            )
        )

    run_id = time.strftime("%Y%m%d%H%M%S")
    log_dir = arguments.output.parent / f"ingestion-{run_id}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for scenario in scenarios:
        print(f"running: {scenario.name} ({scenario.consumer_count} consumer(s))")
        results.append(run_scenario(scenario, arguments, run_id, log_dir))
    arguments.capacities = capacities
    return results


def read_fleet_report(path: str, what: str, extract: Callable[[dict], Any]) -> Any:
    """Load a fleet-report.json and return extract(report).

    Raises BenchmarkError naming the file and `what` was read when the file is
    missing, is not JSON or lacks a field.
    """
    try:
        return extract(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BenchmarkError(
            f"reading {what} from {path} failed: {error!r}; "
            "pass a fleet-report.json written by playbooks/verify.yml"
        ) from error


def fleet_from_report(path: str, metrics_host: str) -> dict[str, Any]:
    """Read the bootstrap servers, topic and consumers from a fleet-report.json.

    Each consumer's /metrics is at metrics_host and the consumer's host port.
    """

    def extract(report: dict) -> dict[str, Any]:
        consumers = [(c["name"], int(c["port"])) for c in report["consumers"]]
        return {
            "bootstrap": str(report["kafka"]["bootstrap_servers"]),
            "topic": str(report["kafka"]["topic"]),
            "names": [name for name, _ in consumers],
            "metrics_urls": [
                f"http://{metrics_host}:{port}/metrics" for _, port in consumers
            ],
        }

    fleet = read_fleet_report(path, "the fleet", extract)
    if not fleet["names"]:
        raise BenchmarkError(f"{path} lists no consumers")
    return fleet


def command_fleet(arguments: argparse.Namespace) -> list[RunResult]:
    fleet: dict[str, Any] = {"names": [], "metrics_urls": []}
    if arguments.fleet_report:
        fleet = fleet_from_report(arguments.fleet_report, arguments.metrics_host)
    bootstrap = arguments.bootstrap or fleet.get("bootstrap")
    topic = arguments.topic or fleet.get("topic")
    metrics_urls = arguments.metrics_url or fleet["metrics_urls"]
    names = arguments.name or (
        fleet["names"]
        if not arguments.metrics_url
        else [f"consumer-{n + 1}" for n in range(len(metrics_urls))]
    )
    if not bootstrap or not topic or not metrics_urls:
        raise BenchmarkError(
            "the fleet mode needs --bootstrap, --topic and --metrics-url, "
            "or --fleet-report to read them from"
        )
    if len(names) != len(metrics_urls):
        raise BenchmarkError("give one --name per --metrics-url, or none")
    arguments.bootstrap = bootstrap
    events = build_events(arguments.files, arguments.batch_size, arguments.words)
    arguments.capacities = []
    return [
        run_ingestion(
            "fleet",
            names,
            metrics_urls,
            bootstrap,
            topic,
            events,
            None,
            arguments.timeout,
        )
    ]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bootstrap", help="Kafka bootstrap servers, HOST:PORT")
    common.add_argument(
        "--files", type=int, default=1962, help="files to ingest (default 1962)"
    )
    common.add_argument(
        "--batch-size", type=int, default=25, help="files per event (default 25)"
    )
    common.add_argument(
        "--words", type=int, default=200, help="words per file (default 200)"
    )
    common.add_argument(
        "--model", default="nomic-embed-text", help="embedding model to request"
    )
    common.add_argument(
        "--timeout",
        type=float,
        default=600,
        help="seconds to wait for the consumers to finish (default 600)",
    )
    common.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT_DIR / f"ingestion-{time.strftime('%Y%m%d-%H%M%S')}.json",
        help="JSON file for the results (default reports/benchmarks/ingestion-*.json)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    compare = commands.add_parser(
        "compare",
        parents=[common],
        help="run local reference consumers against 1 and N endpoints",
    )
    compare.add_argument(
        "--endpoint", action="append", help="NAME=URL of an Ollama endpoint"
    )
    compare.add_argument(
        "--fleet-report", help="fleet-report.json whose endpoints to use"
    )
    compare.add_argument(
        "--single-endpoint",
        type=int,
        default=1,
        help="which endpoint (1-based) the one-endpoint scenario uses (default 1)",
    )
    compare.add_argument(
        "--concurrency",
        type=int,
        default=2,
        help="requests in flight per consumer (CONSUMER_CONCURRENCY, default 2)",
    )
    compare.add_argument(
        "--read-timeout",
        type=float,
        default=120,
        help="seconds a consumer waits for an embed response (HTTP_READ_TIMEOUT, "
        "default 120); lower it to see when requests queue too long",
    )
    compare.add_argument(
        "--weighted",
        action="store_true",
        help="add a scenario with consumers in proportion to measured capacity",
    )
    compare.add_argument(
        "--capacity-seconds",
        type=float,
        default=3,
        help="seconds of capacity measurement per endpoint (default 3)",
    )
    compare.add_argument(
        "--max-consumers-per-endpoint",
        type=int,
        default=8,
        help="upper bound of consumers per endpoint when weighted (default 8)",
    )

    fleet = commands.add_parser(
        "fleet", parents=[common], help="measure consumers that already run"
    )
    fleet.add_argument("--topic", help="topic the consumers read")
    fleet.add_argument(
        "--metrics-url",
        action="append",
        help="a consumer's /metrics URL, once per consumer",
    )
    fleet.add_argument("--name", action="append", help="a consumer's name, in order")
    fleet.add_argument(
        "--fleet-report",
        help="fleet-report.json to read the bootstrap servers, topic and consumers "
        "from; options given on the command line take precedence",
    )
    fleet.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="Docker host address for the consumers' /metrics when they come from "
        "--fleet-report (default 127.0.0.1, for a run on the Docker host)",
    )
    arguments = parser.parse_args()
    if arguments.command == "compare" and not arguments.bootstrap:
        parser.error("compare needs --bootstrap")

    for option in ("files", "batch_size", "words"):
        if getattr(arguments, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be 1 or more")
    if arguments.command == "compare" and arguments.concurrency < 1:
        parser.error("--concurrency must be 1 or more")
    if arguments.command == "compare" and arguments.read_timeout <= 0:
        parser.error("--read-timeout must be more than 0 seconds")
    return arguments


def main() -> int:
    arguments = parse_arguments()
    try:
        if arguments.command == "compare":
            results = command_compare(arguments)
        else:
            results = command_fleet(arguments)
    except BenchmarkError as error:
        print(f"ingestion benchmark: error: {error}", file=sys.stderr)
        return 1

    print()
    print(format_table(results))
    write_output(
        arguments.output,
        {
            "command": arguments.command,
            "files": arguments.files,
            "batch_size": arguments.batch_size,
            "words_per_file": arguments.words,
            "machine": {"cpus": os.cpu_count(), "platform": sys.platform},
            "capacities": arguments.capacities,
            "results": [result.__dict__ for result in results],
        },
    )
    return 0 if all(result.complete for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
