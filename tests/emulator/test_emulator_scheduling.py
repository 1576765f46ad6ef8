"""/api/ps and keep_alive, one-at-a-time service, and the 503 queue limit."""

import threading
import time
from datetime import datetime

import httpx
from local_processes import log_path

BUSY_ERROR = {
    "error": "server busy, please try again.  maximum pending requests exceeded"
}


def _expires_in(model: dict) -> float:
    expires = datetime.fromisoformat(model["expires_at"].replace("Z", "+00:00"))
    return expires.timestamp() - time.time()


def test_ps_lists_model_after_embed(emulator):
    emulator.pull("nomic-embed-text")
    emulator.client.post("/api/embed", json={"model": "nomic-embed-text", "input": "x"})

    (model,) = emulator.client.get("/api/ps").json()["models"]
    assert model["name"] == "nomic-embed-text:latest"
    assert model["model"] == "nomic-embed-text:latest"
    assert model["size_vram"] == model["size"]
    assert model["details"]["family"] == "nomic-bert"
    assert 290 < _expires_in(model) <= 300


def test_warm_up_loads_model(emulator):
    emulator.pull("nomic-embed-text")
    emulator.client.post("/api/embed", json={"model": "nomic-embed-text", "input": []})

    names = [model["name"] for model in emulator.client.get("/api/ps").json()["models"]]
    assert names == ["nomic-embed-text:latest"]


def test_keep_alive_zero_unloads_now(emulator):
    emulator.pull("nomic-embed-text")
    emulator.client.post(
        "/api/embed", json={"model": "nomic-embed-text", "input": "x", "keep_alive": 0}
    )
    assert emulator.client.get("/api/ps").json() == {"models": []}


def test_keep_alive_expires(emulator):
    emulator.pull("nomic-embed-text")
    emulator.client.post(
        "/api/embed",
        json={"model": "nomic-embed-text", "input": "x", "keep_alive": "300ms"},
    )
    assert len(emulator.client.get("/api/ps").json()["models"]) == 1

    time.sleep(0.5)
    assert emulator.client.get("/api/ps").json() == {"models": []}


def test_negative_keep_alive_keeps_forever(emulator):
    emulator.pull("nomic-embed-text")
    emulator.client.post(
        "/api/embed", json={"model": "nomic-embed-text", "input": "x", "keep_alive": -1}
    )
    (model,) = emulator.client.get("/api/ps").json()["models"]
    assert _expires_in(model) > 100 * 365 * 86400


def test_environment_keep_alive_default(start):
    emulator = start({"OLLAMA_KEEP_ALIVE": "1h"})
    emulator.pull("nomic-embed-text")
    emulator.client.post("/api/embed", json={"model": "nomic-embed-text", "input": "x"})

    (model,) = emulator.client.get("/api/ps").json()["models"]
    assert 3590 < _expires_in(model) <= 3600


def _post_in_threads(emulator, count: int) -> list[httpx.Response]:
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def post() -> None:
        with httpx.Client(base_url=emulator.base_url, timeout=30.0) as client:
            response = client.post(
                "/api/embed", json={"model": "nomic-embed-text", "input": "x"}
            )
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=post) for _ in range(count)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    return responses


def test_queue_limit_answers_503(start):
    emulator = start({"OLLAMA_EMULATOR_EMBED_SECONDS": "0.6", "OLLAMA_MAX_QUEUE": "1"})
    emulator.pull("nomic-embed-text")

    responses = _post_in_threads(emulator, 4)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 200, 503, 503]
    busy = [r.json() for r in responses if r.status_code == 503]
    assert busy == [BUSY_ERROR, BUSY_ERROR]


def test_embed_served_one_at_a_time(start):
    emulator = start(
        {"OLLAMA_EMULATOR_EMBED_SECONDS": "0.3", "OLLAMA_NUM_PARALLEL": "4"}
    )
    emulator.pull("nomic-embed-text")

    started = time.monotonic()
    responses = _post_in_threads(emulator, 3)
    elapsed = time.monotonic() - started

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert elapsed >= 0.9


def test_embed_concurrency_knob_allows_parallel(start):
    emulator = start(
        {
            "OLLAMA_EMULATOR_EMBED_SECONDS": "0.5",
            "OLLAMA_EMULATOR_EMBED_CONCURRENCY": "3",
        }
    )
    emulator.pull("nomic-embed-text")

    started = time.monotonic()
    responses = _post_in_threads(emulator, 3)
    elapsed = time.monotonic() - started

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert elapsed < 1.2


def test_item_seconds_scale_with_batch(start):
    emulator = start({"OLLAMA_EMULATOR_EMBED_ITEM_SECONDS": "0.02"})
    emulator.pull("nomic-embed-text")

    response = emulator.client.post(
        "/api/embed",
        json={"model": "nomic-embed-text", "input": [f"file {n}" for n in range(25)]},
    )

    assert response.status_code == 200
    body = response.json()
    assert len(body["embeddings"]) == 25
    # The runner sleeps 25 x 0.02 s, so the reported duration cannot be shorter.
    assert body["total_duration"] >= 0.5e9


def test_item_seconds_logged_at_start(start):
    emulator = start(
        {
            "OLLAMA_EMULATOR_EMBED_SECONDS": "0.001",
            "OLLAMA_EMULATOR_EMBED_ITEM_SECONDS": "0.004",
        }
    )

    log = log_path(emulator.tmp_path, emulator.base_url).read_text()
    assert "OLLAMA_EMULATOR_EMBED_SECONDS=0.001" in log
    assert "OLLAMA_EMULATOR_EMBED_ITEM_SECONDS=0.004" in log


def test_invalid_item_seconds_falls_back(start):
    emulator = start({"OLLAMA_EMULATOR_EMBED_ITEM_SECONDS": "fast"})

    log = log_path(emulator.tmp_path, emulator.base_url).read_text()
    assert "invalid OLLAMA_EMULATOR_EMBED_ITEM_SECONDS='fast'" in log
    assert "OLLAMA_EMULATOR_EMBED_ITEM_SECONDS=0.0" in log


def test_queue_limit_counts_batches_not_items(start):
    emulator = start(
        {"OLLAMA_EMULATOR_EMBED_ITEM_SECONDS": "0.05", "OLLAMA_MAX_QUEUE": "1"}
    )
    emulator.pull("nomic-embed-text")
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def post_batch() -> None:
        with httpx.Client(base_url=emulator.base_url, timeout=30.0) as client:
            response = client.post(
                "/api/embed",
                json={"model": "nomic-embed-text", "input": ["a", "b", "c", "d"]},
            )
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=post_batch) for _ in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 200, 503]
