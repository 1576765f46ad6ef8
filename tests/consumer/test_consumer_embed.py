"""The reference consumer's embed logic against the Ollama emulator."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from local_processes import free_port
from test_consumer_settings import REQUIRED, files_event


def make_embedder(app, base_url, **environment):
    settings = app.Settings({**REQUIRED, "OLLAMA_BASE_URL": base_url, **environment})
    metrics = app.Metrics("consumer-test", settings)
    client = app.build_client(settings)
    return app.Embedder(client, settings, metrics), metrics


def start_blocking_embed(base_url):
    """Send one embed request from a thread and return the started thread.

    The request keeps the emulator busy for its OLLAMA_EMULATOR_EMBED_SECONDS.
    """
    blocker = threading.Thread(
        target=httpx.post,
        args=(f"{base_url}/api/embed",),
        kwargs={"json": {"model": "nomic-embed-text", "input": "x"}, "timeout": 30},
    )
    blocker.start()
    return blocker


def test_files_event_embedded(app, ollama):
    embedder, metrics = make_embedder(app, ollama())

    outcome = embedder.handle_event(files_event(25), "t[0]@0")

    counters = metrics.snapshot()["counters"]
    assert outcome == "ok"
    assert counters["events"] == 1
    assert counters["ok"] == 1
    assert counters["embeddings"] == 25
    assert counters["requests"] == 1


def test_large_event_split_into_batches(app, ollama):
    embedder, metrics = make_embedder(app, ollama(), EMBED_BATCH_SIZE="10")

    outcome = embedder.handle_event(files_event(25), "t[0]@0")

    counters = metrics.snapshot()["counters"]
    assert outcome == "ok"
    assert counters["requests"] == 3
    assert counters["embeddings"] == 25


def test_503_retried_until_exhausted(app, ollama):
    base_url = ollama({"OLLAMA_EMULATOR_EMBED_SECONDS": "3", "OLLAMA_MAX_QUEUE": "0"})
    blocker = start_blocking_embed(base_url)
    time.sleep(0.5)
    waits: list[float] = []
    embedder, metrics = make_embedder(
        app, base_url, RETRY_ATTEMPTS="3", RETRY_BACKOFF_SECONDS="0.1"
    )
    embedder.sleep = waits.append

    outcome = embedder.handle_event(b"one text", "t[0]@1")
    blocker.join()

    counters = metrics.snapshot()["counters"]
    assert outcome == "busy"
    assert counters["http_503"] == 4
    assert counters["retries"] == 3
    assert counters["busy"] == 1
    assert waits == [0.1, 0.2, 0.4]


def test_503_then_success(app, ollama):
    base_url = ollama({"OLLAMA_EMULATOR_EMBED_SECONDS": "0.8", "OLLAMA_MAX_QUEUE": "0"})
    blocker = start_blocking_embed(base_url)
    time.sleep(0.3)
    embedder, metrics = make_embedder(
        app, base_url, RETRY_ATTEMPTS="20", RETRY_BACKOFF_SECONDS="0.2"
    )

    outcome = embedder.handle_event(b"one text", "t[0]@1")
    blocker.join()

    counters = metrics.snapshot()["counters"]
    assert outcome == "ok"
    assert counters["http_503"] >= 1
    assert counters["retries"] == counters["http_503"]
    assert counters["embeddings"] == 1


def test_400_not_retried(app, ollama):
    embedder, metrics = make_embedder(app, ollama(), EMBED_TRUNCATE="false")
    too_long = json.dumps({"files": [{"path": "big.txt", "content": "w " * 3000}]})

    outcome = embedder.handle_event(too_long.encode(), "t[0]@2")

    counters = metrics.snapshot()["counters"]
    assert outcome == "rejected"
    assert counters["requests"] == 1
    assert counters["retries"] == 0
    assert counters["rejected"] == 1


def test_unknown_model_rejected(app, ollama):
    embedder, metrics = make_embedder(app, ollama(), OLLAMA_MODEL="missing-model")

    outcome = embedder.handle_event(b"text", "t[0]@3")

    assert outcome == "rejected"
    assert metrics.snapshot()["counters"]["rejected"] == 1


def test_read_timeout_counted(app, ollama):
    base_url = ollama({"OLLAMA_EMULATOR_EMBED_SECONDS": "2"})
    embedder, metrics = make_embedder(app, base_url, HTTP_READ_TIMEOUT="0.3")

    outcome = embedder.handle_event(b"text", "t[0]@4")

    snapshot = metrics.snapshot()
    assert outcome == "read_timeout"
    assert snapshot["counters"]["read_timeout"] == 1
    assert snapshot["counters"]["pool_timeout"] == 0
    assert snapshot["timeouts"] == 1


def test_pool_timeout_counted(app, ollama):
    # A client with more callers than connections, which the consumer never
    # builds itself, shows that PoolTimeout is told apart from ReadTimeout.
    base_url = ollama({"OLLAMA_EMULATOR_EMBED_SECONDS": "2"})
    embedder, metrics = make_embedder(app, base_url)
    embedder.client = httpx.Client(
        timeout=httpx.Timeout(5.0, pool=0.2), limits=httpx.Limits(max_connections=1)
    )
    holder = threading.Thread(target=embedder.handle_event, args=(b"a", "t[0]@5"))
    holder.start()
    time.sleep(0.5)

    outcome = embedder.handle_event(b"b", "t[0]@6")
    holder.join()

    counters = metrics.snapshot()["counters"]
    assert outcome == "pool_timeout"
    assert counters["pool_timeout"] == 1
    assert counters["ok"] == 1


def test_connection_refused_is_error(app):
    embedder, metrics = make_embedder(app, f"http://127.0.0.1:{free_port()}")

    outcome = embedder.handle_event(b"text", "t[0]@7")

    assert outcome == "error"
    assert metrics.snapshot()["counters"]["error"] == 1


def test_in_flight_bounded_by_concurrency(app, ollama):
    base_url = ollama({"OLLAMA_EMULATOR_EMBED_ITEM_SECONDS": "0.02"})
    embedder, metrics = make_embedder(app, base_url, CONSUMER_CONCURRENCY="3")
    events = [(files_event(5), f"t[0]@{n}") for n in range(12)]

    with ThreadPoolExecutor(3) as executor:
        outcomes = app.handle_events(embedder, executor, events)

    snapshot = metrics.snapshot()
    assert outcomes == ["ok"] * 12
    assert snapshot["max_in_flight"] <= 3
    assert snapshot["counters"]["embeddings"] == 60
    assert snapshot["timeouts"] == 0
    assert sum(snapshot["latency_seconds"]["counts"]) == 12
    assert snapshot["latency_seconds"]["p50"] is not None
    assert snapshot["latency_seconds"]["p95"] >= snapshot["latency_seconds"]["p50"]
