"""ollama_capacity: throughput measurement against emulators and consumer counts."""

from __future__ import annotations

import ollama_capacity
import pytest
from local_processes import pull_model


def counts(capacities, maximum=8, current=None, keep_margin=0.0):
    """Return only the consumer counts of consumers_for_capacities."""
    return [
        count
        for _, count, _ in ollama_capacity.consumers_for_capacities(
            capacities, maximum, current, keep_margin
        )
    ]


def test_consumers_proportional_to_capacity():
    assert counts([30.0, 60.0, 90.0]) == [1, 2, 3]


def test_consumers_capped_at_maximum():
    assert counts([10.0, 1000.0], maximum=4) == [1, 4]


def test_equal_capacities_get_one_each():
    assert counts([50.0, 50.0, 50.0]) == [1, 1, 1]


def test_ratio_and_kept_reported():
    results = ollama_capacity.consumers_for_capacities([40.0, 77.2], 8)

    assert results == [(1.0, 1, False), (1.93, 2, False)]


@pytest.mark.parametrize(
    ("fast", "current", "expected", "kept"),
    [
        # Ratio 1.55 rounds to 2, but 1 is deployed and 1.55 is within 0.75 of it.
        (62.0, 1, 1, True),
        # Ratio 1.45 rounds to 1, but 2 is deployed and 1.45 is within 0.75 of it.
        (58.0, 2, 2, True),
        # Ratio 1.8 is 0.8 away from the deployed 1: the capacity really changed.
        (72.0, 1, 2, False),
        # Ratio 3.0 is far from the deployed 1.
        (120.0, 1, 3, False),
        # The deployed count is the rounded ratio: nothing to keep.
        (80.0, 2, 2, False),
        # Nothing deployed yet: the rounded ratio.
        (62.0, None, 2, False),
    ],
)
def test_deployed_count_kept_near_boundary(fast, current, expected, kept):
    results = ollama_capacity.consumers_for_capacities(
        [40.0, fast], 8, [1, current], keep_margin=0.25
    )

    assert results[1][1] == expected
    assert results[1][2] is kept


def test_deployed_count_above_maximum_replaced():
    assert counts([10.0, 41.0], maximum=3, current=[1, 5], keep_margin=0.25) == [1, 3]


def test_keep_margin_zero_keeps_nothing_past_boundary():
    assert counts([40.0, 62.0], current=[1, 1], keep_margin=0.0) == [1, 2]


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
        pull_model(server.url)

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
    assert fast_result["ratio"] > 1
    assert fast_result["kept_current"] is False


def test_module_keeps_deployed_count(module_runner, ollama_factory):
    # Two emulators with the same service time measure a ratio near 1, so a
    # deployed count of 1 stays, and one of 4 (ratio 3 away) is replaced.
    servers = [ollama_factory(name, {}) for name in ("gpu-a", "gpu-b")]
    for server in servers:
        pull_model(server.url)

    run = module_runner(
        "ollama_capacity",
        {
            "endpoints": [
                {"name": "gpu-a", "url": servers[0].url},
                {"name": "gpu-b", "url": servers[1].url},
            ],
            "model": "nomic-embed-text",
            "seconds": 0.3,
            "batch_size": 5,
            "current": {"gpu-a": "1", "gpu-b": 4},
        },
    )

    assert not run.failed, run.result
    assert run.result["consumers_per_endpoint"]["gpu-a"] == 1
    assert run.result["endpoints"][1]["kept_current"] is False
    assert run.result["consumers_per_endpoint"]["gpu-b"] < 4


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"keep_margin": 0.5}, "keep_margin must be at least 0 and less than 0.5"),
        ({"current": {"gpu-1": 0}}, "current[gpu-1] must be a whole number"),
        ({"current": {"gpu-1": "two"}}, "got 'two'"),
    ],
)
def test_module_rejects_bad_current(module_runner, arguments, message):
    run = module_runner(
        "ollama_capacity",
        {
            "endpoints": [{"name": "gpu-1", "url": "http://127.0.0.1:9"}],
            "model": "nomic-embed-text",
            **arguments,
        },
    )

    assert run.failed
    assert message in run.result["msg"]


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
