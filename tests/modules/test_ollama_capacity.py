"""ollama_capacity: throughput measurement against emulators and consumer counts."""

from __future__ import annotations

import httpx
import ollama_capacity
import pytest


def test_consumers_proportional_to_capacity():
    assert ollama_capacity.consumers_for_capacities([30.0, 60.0, 90.0], 8) == [1, 2, 3]


def test_consumers_capped_at_maximum():
    assert ollama_capacity.consumers_for_capacities([10.0, 1000.0], 4) == [1, 4]


def test_equal_capacities_get_one_each():
    assert ollama_capacity.consumers_for_capacities([50.0, 50.0, 50.0], 8) == [1, 1, 1]


def test_zero_capacity_rejected():
    with pytest.raises(ValueError, match="more than 0"):
        ollama_capacity.consumers_for_capacities([0.0, 5.0], 8)


def test_probe_texts_distinct():
    texts = ollama_capacity.probe_texts(25, 200)

    assert len(texts) == 25
    assert len(set(texts)) == 25
    assert len(texts[0].split()) == 200


def test_module_weights_faster_endpoint(module_runner, ollama_factory):
    slow = ollama_factory("slow", {"OLLAMA_EMULATOR_EMBED_ITEM_SECONDS": "0.02"})
    fast = ollama_factory("fast", {"OLLAMA_EMULATOR_EMBED_ITEM_SECONDS": "0.002"})
    for server in (slow, fast):
        response = httpx.post(
            f"{server.url}/api/pull",
            json={"model": "nomic-embed-text", "stream": False},
            timeout=30,
        )
        assert response.status_code == 200

    run = module_runner(
        "ollama_capacity",
        {
            "endpoints": [
                {"name": "slow", "url": slow.url},
                {"name": "fast", "url": fast.url},
            ],
            "model": "nomic-embed-text",
            "seconds": 0.5,
            "batch_size": 10,
            "_ansible_check_mode": True,
        },
    )

    assert not run.failed, run.result
    assert run.result["changed"] is False
    slow_result, fast_result = run.result["endpoints"]
    assert slow_result["requests"] >= 2
    assert slow_result["consumers"] == 1
    assert fast_result["consumers"] > 1
    assert run.result["consumers_per_endpoint"]["slow"] == 1


def test_module_names_missing_model(module_runner, ollama_server):
    run = module_runner(
        "ollama_capacity",
        {
            "endpoints": [{"name": "gpu-9", "url": ollama_server.url}],
            "model": "nomic-embed-text",
            "seconds": 0.2,
        },
    )

    assert run.failed
    assert "gpu-9" in run.result["msg"]
    assert ollama_server.url in run.result["msg"]


def test_module_rejects_bad_seconds(module_runner):
    run = module_runner(
        "ollama_capacity",
        {
            "endpoints": [{"name": "gpu-1", "url": "http://127.0.0.1:9"}],
            "model": "nomic-embed-text",
            "seconds": 0,
        },
    )

    assert run.failed
    assert run.result["msg"] == "seconds must be more than 0, got 0.0"
