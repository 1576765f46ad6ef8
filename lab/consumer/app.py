#!/usr/bin/env python3
"""Reference Kafka consumer for ollama-fleet: the lab's consumer and a smoke test.

Joins a Kafka consumer group (client.id = INSTANCE_ID), turns every event into
/api/embed requests to one Ollama server, and counts the outcome of each event.
GET /health returns the status and the assigned partitions; GET /metrics returns
the counters, the latency histogram and percentiles as JSON.

Settings (environment):
    OLLAMA_BASE_URL          Ollama server, e.g. http://192.0.2.10:11434 (required)
    OLLAMA_MODEL             embedding model (default nomic-embed-text)
    KAFKA_BOOTSTRAP_SERVERS  "host:port,host:port" (required)
    KAFKA_TOPIC              topic to read (required)
    KAFKA_CONSUMER_GROUP     consumer group id (required)
    INSTANCE_ID              client.id in the group and name in /metrics
                             (default: the host name)
    CONSUMER_CONCURRENCY     embed requests in flight at most, which is also the
                             size of the httpx connection pool (default 1)
    EMBED_BATCH_SIZE         texts per /api/embed request at most (default 25)
    EMBED_TRUNCATE           true (Ollama's default) or false. With false, an
                             input longer than the context fails with HTTP 400
    HTTP_CONNECT_TIMEOUT     seconds to open a connection (default 5)
    HTTP_READ_TIMEOUT        seconds to wait for an embed response (default 120)
    HTTP_POOL_TIMEOUT        seconds to wait for a free connection (default 30);
                             raised to HTTP_READ_TIMEOUT when lower
    RETRY_ATTEMPTS           retries of a request answered 503 (default 5)
    RETRY_BACKOFF_SECONDS    wait before the first retry, doubled for each next
                             one up to 30 s (default 0.5)
    KAFKA_SESSION_TIMEOUT_MS consumer group session timeout (default: librdkafka's)
    KAFKA_AUTO_OFFSET_RESET  start of a new group: earliest or latest (default earliest)
    HEALTH_PORT              port of /health and /metrics (default 8080)
    HEALTH_ADDRESS           address they listen on (default 0.0.0.0, as a
                             container needs; 127.0.0.1 for a local process)
    LOG_LEVEL                logging level name (default INFO)

Runs on Debian 12's python3-httpx 0.23.3 and python3-confluent-kafka 1.7.0, and
on newer releases of both. The event format is described in README.md beside
this file.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaError, KafkaException

LOG = logging.getLogger("consumer")

# Seconds between two log lines about the same kind of failure; the rest are counted.
ERROR_LOG_INTERVAL = 10.0

# Seconds between two log lines with the counters.
STATS_LOG_INTERVAL = 60.0

# Maximum wait between two retries of a 503, in seconds.
MAX_BACKOFF_SECONDS = 30.0

# Upper bounds, in seconds, of the buckets of the event latency histogram.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
    90.0, 120.0, 180.0, 300.0,
)  # fmt: skip

# Latencies kept for the exact percentiles in /metrics; older ones only remain
# in the histogram.
LATENCY_SAMPLES = 10000

# Outcome of an event. Every event gets exactly one.
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


class Settings:
    """Consumer settings read from the environment.

    Raises ValueError naming the variable, its value and the accepted range.
    """

    def __init__(self, environ: dict[str, str]) -> None:
        missing = [
            name
            for name in (
                "OLLAMA_BASE_URL",
                "KAFKA_BOOTSTRAP_SERVERS",
                "KAFKA_TOPIC",
                "KAFKA_CONSUMER_GROUP",
            )
            if not environ.get(name)
        ]
        if missing:
            raise ValueError(f"missing environment variable(s): {', '.join(missing)}")

        self.ollama_base_url = environ["OLLAMA_BASE_URL"].rstrip("/")
        self.model = environ.get("OLLAMA_MODEL") or "nomic-embed-text"
        self.bootstrap_servers = environ["KAFKA_BOOTSTRAP_SERVERS"]
        self.topic = environ["KAFKA_TOPIC"]
        self.group = environ["KAFKA_CONSUMER_GROUP"]
        self.instance_id = environ.get("INSTANCE_ID") or socket.gethostname()
        self.concurrency = _read_int(environ, "CONSUMER_CONCURRENCY", 1, minimum=1)
        self.batch_size = _read_int(environ, "EMBED_BATCH_SIZE", 25, minimum=1)
        self.truncate = _read_bool(environ, "EMBED_TRUNCATE", True)
        self.connect_timeout = _read_seconds(environ, "HTTP_CONNECT_TIMEOUT", 5)
        self.read_timeout = _read_seconds(environ, "HTTP_READ_TIMEOUT", 120)
        self.pool_timeout = _read_seconds(environ, "HTTP_POOL_TIMEOUT", 30)
        self.pool_timeout_raised = self.pool_timeout < self.read_timeout
        # A request waits for a connection only while another one is in flight,
        # which can take up to the read timeout.
        self.pool_timeout = max(self.pool_timeout, self.read_timeout)
        self.retry_attempts = _read_int(environ, "RETRY_ATTEMPTS", 5, minimum=0)
        self.retry_backoff = _read_seconds(environ, "RETRY_BACKOFF_SECONDS", 0.5)
        self.session_timeout_ms = _read_int(
            environ, "KAFKA_SESSION_TIMEOUT_MS", 0, minimum=0
        )
        self.auto_offset_reset = environ.get("KAFKA_AUTO_OFFSET_RESET") or "earliest"
        if self.auto_offset_reset not in ("earliest", "latest"):
            raise ValueError(
                f"KAFKA_AUTO_OFFSET_RESET={self.auto_offset_reset!r} is invalid; "
                "use earliest or latest"
            )
        self.health_port = _read_int(environ, "HEALTH_PORT", 8080, minimum=1)
        self.health_address = environ.get("HEALTH_ADDRESS") or "0.0.0.0"


def _read_int(environ: dict[str, str], name: str, default: int, minimum: int) -> int:
    text = environ.get(name) or ""
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ValueError(f"{name}={text!r} is invalid; use an integer >= {minimum}")
    return value


def _read_seconds(environ: dict[str, str], name: str, default: float) -> float:
    text = environ.get(name) or ""
    if not text:
        return float(default)
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ValueError(f"{name}={text!r} is invalid; use a number of seconds > 0")
    return value


def _read_bool(environ: dict[str, str], name: str, default: bool) -> bool:
    text = (environ.get(name) or "").strip().lower()
    if not text:
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={text!r} is invalid; use true or false")


class InvalidEventError(ValueError):
    """An event that does not follow the message format; it is never sent."""


def event_texts(value: bytes | None) -> list[str]:
    """Return the texts to embed from one Kafka message value.

    Three formats are accepted. The main one is a JSON object whose "files" is
    a list of objects with a "content" string (and usually a "path"). A JSON
    object with a "text" string gives one text, and so does any other UTF-8
    value. Raises InvalidEventError for an empty value or a malformed "files"
    list.
    """
    if not value:
        raise InvalidEventError("empty message value")
    text = value.decode("utf-8", errors="replace")
    try:
        document = json.loads(text)
    except ValueError:
        return [text]
    if not isinstance(document, dict):
        return [text]

    if "files" in document:
        files = document["files"]
        if not isinstance(files, list) or not files:
            raise InvalidEventError('"files" must be a non-empty list')
        texts = []
        for position, entry in enumerate(files):
            content = entry.get("content") if isinstance(entry, dict) else None
            if not isinstance(content, str) or not content:
                raise InvalidEventError(
                    f'"files"[{position}] has no non-empty "content" string'
                )
            texts.append(content)
        return texts

    if isinstance(document.get("text"), str) and document["text"]:
        return [document["text"]]
    return [text]


class Metrics:
    """Counters, latencies and partition assignment, shared by all threads."""

    def __init__(self, instance_id: str, settings: Settings | None = None) -> None:
        self.instance_id = instance_id
        self.settings = settings
        self.lock = threading.Lock()
        self.status = "starting"
        self.partitions: list[str] = []
        self.counters = {
            "events": 0,
            "embeddings": 0,
            "requests": 0,
            "retries": 0,
            "http_503": 0,
            **{outcome: 0 for outcome in OUTCOMES},
        }
        self.histogram = [0] * (len(LATENCY_BUCKETS) + 1)
        self.samples: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.in_flight = 0
        self.max_in_flight = 0
        self.first_event_at: float | None = None
        self.last_event_at: float | None = None

    def add(self, name: str, amount: int = 1) -> None:
        with self.lock:
            self.counters[name] += amount

    def request_started(self) -> None:
        with self.lock:
            self.counters["requests"] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def request_finished(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def event_started(self) -> None:
        with self.lock:
            self.counters["events"] += 1
            if self.first_event_at is None:
                self.first_event_at = time.time()

    def event_finished(self, outcome: str, seconds: float) -> None:
        with self.lock:
            self.counters[outcome] += 1
            self.last_event_at = time.time()
            if outcome == "ok":
                self.histogram[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
                self.samples.append(seconds)

    def set_status(self, status: str) -> None:
        with self.lock:
            self.status = status

    def set_partitions(self, partitions: list[Any]) -> None:
        with self.lock:
            self.partitions = sorted(f"{p.topic}[{p.partition}]" for p in partitions)

    def health(self) -> dict[str, Any]:
        with self.lock:
            return {
                "status": self.status,
                "instance_id": self.instance_id,
                "assigned_partitions": list(self.partitions),
                "counters": dict(self.counters),
            }

    def snapshot(self) -> dict[str, Any]:
        """Return everything /metrics serves."""
        with self.lock:
            samples = sorted(self.samples)
            body = {
                "status": self.status,
                "instance_id": self.instance_id,
                "assigned_partitions": list(self.partitions),
                "counters": dict(self.counters),
                "timeouts": sum(
                    self.counters[name]
                    for name in (
                        "pool_timeout",
                        "read_timeout",
                        "connect_timeout",
                        "write_timeout",
                    )
                ),
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "first_event_at": self.first_event_at,
                "last_event_at": self.last_event_at,
                "latency_seconds": {
                    "buckets": [*LATENCY_BUCKETS, "+Inf"],
                    "counts": list(self.histogram),
                    "p50": percentile(samples, 0.50),
                    "p95": percentile(samples, 0.95),
                    "p99": percentile(samples, 0.99),
                    "samples": len(samples),
                },
            }
        if self.settings is not None:
            body["settings"] = {
                "ollama_base_url": self.settings.ollama_base_url,
                "model": self.settings.model,
                "concurrency": self.settings.concurrency,
                "batch_size": self.settings.batch_size,
                "read_timeout": self.settings.read_timeout,
                "pool_timeout": self.settings.pool_timeout,
            }
        return body


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile of sorted values, or None when empty."""
    if not sorted_values:
        return None
    rank = max(1, round(fraction * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class RateLimitedLog:
    """Log a kind of failure at most once per interval, with the number suppressed."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.lock = threading.Lock()
        self.last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        with self.lock:
            if now - self.last.get(kind, -self.interval) < self.interval:
                self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
                return
            skipped = self.suppressed.pop(kind, 0)
            self.last[kind] = now
        suffix = f" ({skipped} similar suppressed)" if skipped else ""
        LOG.warning(message + suffix, *args)


def build_client(settings: Settings) -> httpx.Client:
    """Build the httpx client: one pooled connection per request in flight."""
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=10.0,
        pool=settings.pool_timeout,
    )
    limits = httpx.Limits(
        max_connections=settings.concurrency,
        max_keepalive_connections=settings.concurrency,
    )
    return httpx.Client(timeout=timeout, limits=limits)


class EmbedFailure(Exception):
    """An event failed; `outcome` is one of OUTCOMES."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome


def timeout_outcome(error: httpx.TimeoutException) -> str:
    """Map an httpx timeout to its outcome name."""
    if isinstance(error, httpx.PoolTimeout):
        return "pool_timeout"
    if isinstance(error, httpx.ReadTimeout):
        return "read_timeout"
    if isinstance(error, httpx.ConnectTimeout):
        return "connect_timeout"
    return "write_timeout"


class Embedder:
    """Send the texts of events to /api/embed and record every outcome."""

    def __init__(
        self,
        client: httpx.Client,
        settings: Settings,
        metrics: Metrics,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self.errors = RateLimitedLog(ERROR_LOG_INTERVAL)
        self.sleep = sleep
        self.url = f"{settings.ollama_base_url}/api/embed"

    def handle_event(self, value: bytes | None, where: str) -> str:
        """Embed one event's texts and return its outcome (one of OUTCOMES)."""
        self.metrics.event_started()
        started = time.monotonic()
        try:
            texts = event_texts(value)
            for first in range(0, len(texts), self.settings.batch_size):
                batch = texts[first : first + self.settings.batch_size]
                self.embed_batch(batch)
                self.metrics.add("embeddings", len(batch))
        except InvalidEventError as error:
            outcome = "invalid"
            self.errors.warning("invalid", "event %s is invalid: %s", where, error)
        except EmbedFailure as failure:
            outcome = failure.outcome
            self.errors.warning(
                outcome, "event %s failed (%s): %s", where, outcome, failure
            )
        else:
            outcome = "ok"
        self.metrics.event_finished(outcome, time.monotonic() - started)
        return outcome

    def embed_batch(self, texts: list[str]) -> None:
        """Request embeddings for texts, retrying 503; raise EmbedFailure on failure."""
        body: dict[str, Any] = {"model": self.settings.model, "input": texts}
        if not self.settings.truncate:
            body["truncate"] = False
        backoff = self.settings.retry_backoff
        for attempt in range(self.settings.retry_attempts + 1):
            response = self._post(body)
            if response.status_code != 503:
                break
            self.metrics.add("http_503")
            if attempt == self.settings.retry_attempts:
                raise EmbedFailure(
                    "busy",
                    f"HTTP 503 after {attempt + 1} attempts: {error_text(response)}",
                )
            self.metrics.add("retries")
            LOG.debug("HTTP 503 from %s, retrying in %.2f s", self.url, backoff)
            self.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

        if 400 <= response.status_code < 500:
            # The input or the model name is wrong; sending it again cannot help.
            raise EmbedFailure(
                "rejected", f"HTTP {response.status_code}: {error_text(response)}"
            )
        if response.status_code != 200:
            raise EmbedFailure(
                "error", f"HTTP {response.status_code}: {error_text(response)}"
            )
        try:
            embeddings = response.json().get("embeddings")
        except (ValueError, AttributeError) as error:
            raise EmbedFailure("error", f"invalid JSON response: {error}") from None
        # An empty vector means the request was malformed, not that it succeeded.
        if (
            not isinstance(embeddings, list)
            or len(embeddings) != len(texts)
            or not all(embeddings)
        ):
            raise EmbedFailure(
                "error",
                f"response has no vector for each of the {len(texts)} texts",
            )

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        self.metrics.request_started()
        try:
            return self.client.post(self.url, json=body)
        except httpx.TimeoutException as error:
            raise EmbedFailure(timeout_outcome(error), repr(error)) from None
        except httpx.HTTPError as error:
            raise EmbedFailure("error", repr(error)) from None
        finally:
            self.metrics.request_finished()


def error_text(response: httpx.Response) -> str:
    """Return the "error" field of an Ollama error response, else its start."""
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def handle_events(
    embedder: Embedder, executor: ThreadPoolExecutor, events: list[tuple[bytes, str]]
) -> list[str]:
    """Handle events concurrently, at most the executor's worker count at a time.

    Returns the outcomes in the order of `events`.
    """
    futures = [
        executor.submit(embedder.handle_event, value, where) for value, where in events
    ]
    return [future.result() for future in futures]


def make_http_handler(metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    """Build a request handler class that serves /health and /metrics."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                body = metrics.health()
            elif path == "/metrics":
                body = metrics.snapshot()
            else:
                self.send_error(404, "not found")
                return
            code = 200 if body["status"] in ("starting", "running") else 503
            payload = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, fmt: str, *args: Any) -> None:
            LOG.debug("http: " + fmt, *args)

    return Handler


def kafka_config(settings: Settings) -> dict[str, Any]:
    """Return the librdkafka settings of the consumer."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": settings.group,
        # The group check matches members to consumers by client.id.
        "client.id": settings.instance_id,
        "auto.offset.reset": settings.auto_offset_reset,
        "enable.auto.commit": True,
        # Offsets are stored only after a message was handled.
        "enable.auto.offset.store": False,
    }
    if settings.session_timeout_ms:
        config["session.timeout.ms"] = settings.session_timeout_ms
    return config


def consume(settings: Settings, metrics: Metrics, stop: threading.Event) -> None:
    """Run the consumer loop until `stop` is set or Kafka reports a fatal error.

    Polls up to CONSUMER_CONCURRENCY messages, handles them concurrently and
    stores their offsets once all of them are done, so a committed offset never
    skips an event still in flight. Failed events are counted, not retried.
    """

    def on_assign(consumer: Any, partitions: list[Any]) -> None:
        metrics.set_partitions(partitions)
        LOG.info("assigned %s", [f"{p.topic}[{p.partition}]" for p in partitions])

    def on_revoke(consumer: Any, partitions: list[Any]) -> None:
        metrics.set_partitions([])
        LOG.info("revoked %s", [f"{p.topic}[{p.partition}]" for p in partitions])

    if settings.pool_timeout_raised:
        LOG.info(
            "HTTP_POOL_TIMEOUT raised to HTTP_READ_TIMEOUT (%s s)",
            settings.read_timeout,
        )
    kafka_errors = RateLimitedLog(ERROR_LOG_INTERVAL)
    consumer = Consumer(kafka_config(settings))
    consumer.subscribe(
        [settings.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke
    )
    metrics.set_status("running")
    LOG.info(
        "consuming %s as group %s from %s, embedding with %s at %s, "
        "%d request(s) in flight at most",
        settings.topic,
        settings.group,
        settings.bootstrap_servers,
        settings.model,
        settings.ollama_base_url,
        settings.concurrency,
    )

    next_stats = time.monotonic() + STATS_LOG_INTERVAL
    try:
        with (
            build_client(settings) as client,
            ThreadPoolExecutor(settings.concurrency, "embed") as executor,
        ):
            embedder = Embedder(client, settings, metrics)
            while not stop.is_set():
                messages = consumer.consume(settings.concurrency, 1.0)
                if time.monotonic() >= next_stats:
                    LOG.info("counters %s", metrics.health()["counters"])
                    next_stats = time.monotonic() + STATS_LOG_INTERVAL
                events = []
                handled = []
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            continue
                        if error.fatal():
                            raise KafkaException(error)
                        kafka_errors.warning("kafka", "Kafka error: %s", error)
                        continue
                    where = (
                        f"{message.topic()}[{message.partition()}]@{message.offset()}"
                    )
                    events.append((message.value(), where))
                    handled.append(message)
                handle_events(embedder, executor, events)
                for message in handled:
                    consumer.store_offsets(message=message)
    finally:
        LOG.info("leaving group %s", settings.group)
        consumer.close()


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings(dict(os.environ))
    except ValueError as error:
        LOG.error("invalid settings: %s", error)
        return 2

    metrics = Metrics(settings.instance_id, settings)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        LOG.info("received signal %s, stopping", signal.Signals(signum).name)
        metrics.set_status("stopping")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = ThreadingHTTPServer(
        (settings.health_address, settings.health_port), make_http_handler(metrics)
    )
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    LOG.info(
        "instance %s serving /health and /metrics on port %s",
        settings.instance_id,
        settings.health_port,
    )

    exit_code = 0
    try:
        consume(settings, metrics, stop)
    except KafkaException as error:
        LOG.error("fatal Kafka error, exiting: %s", error)
        metrics.set_status("failed")
        exit_code = 1
    finally:
        server.shutdown()
        server.server_close()
    LOG.info("stopped with counters %s", metrics.health()["counters"])
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
