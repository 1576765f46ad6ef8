#!/usr/bin/env python3
"""Reference Kafka consumer for the ollama-fleet lab.

Joins a Kafka consumer group, sends the text of every message to one Ollama
server's /api/embed and counts successes, errors and timeouts. GET /health on
HEALTH_PORT (default 8080) returns the counters and the assigned partitions.

Settings (environment):
    OLLAMA_BASE_URL          Ollama server, e.g. http://192.0.2.10:11434 (required)
    OLLAMA_MODEL             embedding model (default nomic-embed-text)
    KAFKA_BOOTSTRAP_SERVERS  "host:port,host:port" (required)
    KAFKA_TOPIC              topic to read (required)
    KAFKA_CONSUMER_GROUP     consumer group id (required)
    INSTANCE_ID              name in logs and /health (default: the host name)
    HTTP_POOL_TIMEOUT        seconds to wait for a free HTTP connection (default 30)
    HTTP_READ_TIMEOUT        seconds to wait for an embed response (default 120)
    KAFKA_SESSION_TIMEOUT_MS consumer group session timeout (default: librdkafka's)
    KAFKA_AUTO_OFFSET_RESET  start of a new group: earliest or latest (default earliest)
    HEALTH_PORT              port of the health server (default 8080)
    LOG_LEVEL                logging level name (default INFO)

A message's text is its value decoded as UTF-8, or the "text" field when the
value is a JSON object that has one. Offsets are committed after the embed
request, whatever its outcome: a failed message is counted, not retried.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

LOG = logging.getLogger("consumer")

# Seconds between two log lines about the same kind of failure; the rest are counted.
ERROR_LOG_INTERVAL = 10.0

# Seconds between two log lines with the counters.
STATS_LOG_INTERVAL = 60.0


class Settings:
    """Consumer settings read from the environment."""

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
        self.pool_timeout = float(environ.get("HTTP_POOL_TIMEOUT") or 30)
        self.read_timeout = float(environ.get("HTTP_READ_TIMEOUT") or 120)
        self.session_timeout_ms = environ.get("KAFKA_SESSION_TIMEOUT_MS") or ""
        self.auto_offset_reset = environ.get("KAFKA_AUTO_OFFSET_RESET") or "earliest"
        self.health_port = int(environ.get("HEALTH_PORT") or 8080)


class State:
    """Counters and partition assignment, shared by the consumer loop and /health."""

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        self.lock = threading.Lock()
        self.status = "starting"
        self.partitions: list[str] = []
        self.counters = {"messages": 0, "successes": 0, "errors": 0, "timeouts": 0}

    def count(self, name: str) -> None:
        with self.lock:
            self.counters[name] += 1

    def set_partitions(self, partitions: list[TopicPartition]) -> None:
        with self.lock:
            self.partitions = sorted(f"{p.topic}[{p.partition}]" for p in partitions)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "status": self.status,
                "instance_id": self.instance_id,
                "assigned_partitions": list(self.partitions),
                "counters": dict(self.counters),
            }


class RateLimitedLog:
    """Log a kind of failure at most once per interval, with the number suppressed."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self.last.get(kind, -self.interval) < self.interval:
            self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
            return
        skipped = self.suppressed.pop(kind, 0)
        self.last[kind] = now
        suffix = f" ({skipped} similar suppressed)" if skipped else ""
        LOG.warning(message + suffix, *args)


def message_text(value: bytes | None) -> str:
    """Return the text to embed: the "text" field of a JSON object, else the value."""
    text = (value or b"").decode("utf-8", errors="replace")
    try:
        document = json.loads(text)
    except ValueError:
        return text
    if isinstance(document, dict) and isinstance(document.get("text"), str):
        return document["text"]
    return text


def embed(client: httpx.Client, settings: Settings, text: str) -> None:
    """Request one embedding; raise ValueError when the response has no vector."""
    response = client.post(
        f"{settings.ollama_base_url}/api/embed",
        json={"model": settings.model, "input": text},
    )
    response.raise_for_status()
    embeddings = response.json().get("embeddings")
    # An empty vector means the request was malformed, not that it succeeded.
    if not embeddings or not embeddings[0]:
        raise ValueError("response contains no embedding")


def handle(
    client: httpx.Client,
    settings: Settings,
    state: State,
    errors: RateLimitedLog,
    message: Message,
) -> None:
    """Embed one message's text and count the outcome."""
    state.count("messages")
    where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
    try:
        embed(client, settings, message_text(message.value()))
    except httpx.TimeoutException as error:
        state.count("timeouts")
        errors.warning("timeout", "embed %s timed out: %r", where, error)
    except httpx.HTTPStatusError as error:
        state.count("errors")
        errors.warning(
            "status",
            "embed %s failed with HTTP %s: %s",
            where,
            error.response.status_code,
            error.response.text[:200],
        )
    except (httpx.HTTPError, ValueError) as error:
        state.count("errors")
        errors.warning("error", "embed %s failed: %r", where, error)
    else:
        state.count("successes")


def make_health_handler(state: State) -> type[BaseHTTPRequestHandler]:
    """Build a request handler class that serves GET /health from `state`."""

    class HealthHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/health":
                self.send_error(404, "not found")
                return
            body = state.snapshot()
            code = 200 if body["status"] in ("starting", "running") else 503
            payload = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, fmt: str, *args: Any) -> None:
            LOG.debug("health: " + fmt, *args)

    return HealthHandler


def consume(settings: Settings, state: State, stop: threading.Event) -> None:
    """Run the consumer loop until `stop` is set or Kafka reports a fatal error."""
    config = {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": settings.group,
        "client.id": settings.instance_id,
        "auto.offset.reset": settings.auto_offset_reset,
        "enable.auto.commit": True,
        # Offsets are stored only after a message was handled.
        "enable.auto.offset.store": False,
    }
    if settings.session_timeout_ms:
        config["session.timeout.ms"] = int(settings.session_timeout_ms)

    def on_assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        state.set_partitions(partitions)
        LOG.info("assigned %s", [f"{p.topic}[{p.partition}]" for p in partitions])

    def on_revoke(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        state.set_partitions([])
        LOG.info("revoked %s", [f"{p.topic}[{p.partition}]" for p in partitions])

    timeout = httpx.Timeout(
        connect=5.0, read=settings.read_timeout, write=10.0, pool=settings.pool_timeout
    )
    # One message at a time, so one connection is enough.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    errors = RateLimitedLog(ERROR_LOG_INTERVAL)
    consumer = Consumer(config)
    consumer.subscribe(
        [settings.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke
    )
    with state.lock:
        state.status = "running"
    LOG.info(
        "consuming %s as group %s from %s, embedding with %s at %s",
        settings.topic,
        settings.group,
        settings.bootstrap_servers,
        settings.model,
        settings.ollama_base_url,
    )

    next_stats = time.monotonic() + STATS_LOG_INTERVAL
    try:
        with httpx.Client(timeout=timeout, limits=limits) as client:
            while not stop.is_set():
                message = consumer.poll(1.0)
                if time.monotonic() >= next_stats:
                    LOG.info("counters %s", state.snapshot()["counters"])
                    next_stats = time.monotonic() + STATS_LOG_INTERVAL
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    if error.fatal():
                        raise KafkaException(error)
                    errors.warning("kafka", "Kafka error: %s", error)
                    continue
                handle(client, settings, state, errors, message)
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

    state = State(settings.instance_id)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        LOG.info("received signal %s, stopping", signal.Signals(signum).name)
        with state.lock:
            state.status = "stopping"
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = ThreadingHTTPServer(
        ("0.0.0.0", settings.health_port), make_health_handler(state)
    )
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    LOG.info(
        "instance %s serving /health on port %s",
        settings.instance_id,
        settings.health_port,
    )

    exit_code = 0
    try:
        consume(settings, state, stop)
    except KafkaException as error:
        LOG.error("fatal Kafka error, exiting: %s", error)
        with state.lock:
            state.status = "failed"
        exit_code = 1
    finally:
        server.shutdown()
        server.server_close()
    LOG.info("stopped with counters %s", state.snapshot()["counters"])
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
