"""/api/ps and keep_alive, one-at-a-time service, and the 503 queue limit."""

import threading
import time
from datetime import datetime

import httpx

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
