"""The reference consumer end to end: Tansu, the emulator, /health and /metrics."""

import json
import threading
import time
from http.server import ThreadingHTTPServer

import httpx
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from local_processes import free_port
from test_consumer_settings import files_event


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, 1)])
    futures[topic].result(timeout=10)


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.2)


def finished_events(app, metrics) -> int:
    counters = metrics.health()["counters"]
    return sum(counters[outcome] for outcome in app.OUTCOMES)


@pytest.fixture
def running_consumer(app, ollama, kafka):
    """Start the consumer loop and its HTTP server in threads; yield (metrics, url)."""
    topic = f"files-{free_port()}"
    create_topic(kafka, topic, 2)
    settings = app.Settings(
        {
            "OLLAMA_BASE_URL": ollama({"OLLAMA_EMULATOR_EMBED_ITEM_SECONDS": "0.001"}),
            "KAFKA_BOOTSTRAP_SERVERS": kafka,
            "KAFKA_TOPIC": topic,
            "KAFKA_CONSUMER_GROUP": f"group-{topic}",
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "INSTANCE_ID": "consumer-7",
            "CONSUMER_CONCURRENCY": "2",
        }
    )
    metrics = app.Metrics(settings.instance_id, settings)
    server = ThreadingHTTPServer(("127.0.0.1", 0), app.make_http_handler(metrics))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    loop = threading.Thread(target=app.consume, args=(settings, metrics, stop))
    loop.start()
    try:
        yield metrics, f"http://127.0.0.1:{server.server_address[1]}", topic
    finally:
        stop.set()
        loop.join(timeout=30)
        server.shutdown()
        server.server_close()


def test_consumer_embeds_produced_events(app, running_consumer, kafka):
    metrics, url, topic = running_consumer
    producer = Producer({"bootstrap.servers": kafka})
    for number in range(6):
        producer.produce(topic, key=str(number), value=files_event(25))
    producer.produce(topic, key="bad", value=b'{"files": []}')
    assert producer.flush(10) == 0

    # "events" counts an event when it starts; wait until all 7 have an outcome.
    wait_for(lambda: finished_events(app, metrics) == 7, 60, "7 finished events")
    wait_for(lambda: metrics.health()["assigned_partitions"], 10, "an assignment")

    body = httpx.get(f"{url}/metrics").json()
    assert body["instance_id"] == "consumer-7"
    assert body["counters"]["ok"] == 6
    assert body["counters"]["invalid"] == 1
    assert body["counters"]["embeddings"] == 150
    assert body["max_in_flight"] <= 2
    assert sorted(body["assigned_partitions"]) == [f"{topic}[0]", f"{topic}[1]"]
    assert body["settings"]["concurrency"] == 2


def test_health_returns_status(running_consumer):
    _, url, _ = running_consumer

    wait_for(
        lambda: httpx.get(f"{url}/health").json()["status"] == "running",
        10,
        "status running",
    )
    response = httpx.get(f"{url}/health")

    assert response.status_code == 200
    assert response.json()["instance_id"] == "consumer-7"
    assert httpx.get(f"{url}/nothing").status_code == 404


def test_metrics_json_has_histogram(running_consumer):
    metrics, url, _ = running_consumer

    body = json.loads(httpx.get(f"{url}/metrics").text)

    buckets = body["latency_seconds"]["buckets"]
    assert buckets[-1] == "+Inf"
    assert len(body["latency_seconds"]["counts"]) == len(buckets)
