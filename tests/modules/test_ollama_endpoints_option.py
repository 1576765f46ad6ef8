"""The `endpoints` option that ollama_capacity and ollama_verify share."""

from __future__ import annotations

from typing import Any

import pytest
from module_support import healthy_routes

MODULES = ["ollama_capacity", "ollama_verify"]

INVALID_ENDPOINTS = [
    ([], "endpoints must list at least one endpoint"),
    (
        [{"name": "  ", "url": "http://127.0.0.1:9"}],
        "endpoint with url 'http://127.0.0.1:9' has an empty name",
    ),
    (
        [{"name": "gpu-1", "url": "http://0.0.0.0:11434"}],
        "endpoint gpu-1: URL 'http://0.0.0.0:11434' uses 0.0.0.0, which is a bind "
        "address, not a destination; use the host's reachable address (for example "
        "its ollama_advertise_address)",
    ),
    (
        [
            {"name": "gpu-1", "url": "http://127.0.0.1:9"},
            {"name": "gpu-1 ", "url": "http://127.0.0.2:9"},
        ],
        "endpoint name 'gpu-1' is given twice (urls 'http://127.0.0.1:9' and "
        "'http://127.0.0.2:9'); give every endpoint its own name",
    ),
]

# Options that keep each module's requests to the stub server short. The stub
# returns one embedding per request, so ollama_capacity sends batches of one.
QUICK_OPTIONS = {
    "ollama_capacity": {"seconds": 0.1, "batch_size": 1, "text_words": 5},
    "ollama_verify": {},
}


@pytest.mark.parametrize("module_name", MODULES)
@pytest.mark.parametrize(("endpoints", "message"), INVALID_ENDPOINTS)
def test_invalid_endpoints_rejected(
    module_name: str, endpoints: list[dict[str, str]], message: str, module_runner: Any
) -> None:
    run = module_runner(
        module_name, {"endpoints": endpoints, "model": "nomic-embed-text"}
    )

    assert run.failed
    assert run.result["msg"] == message


@pytest.mark.parametrize("module_name", MODULES)
def test_endpoint_name_stripped(
    module_name: str, module_runner: Any, stub_factory: Any
) -> None:
    stub = stub_factory(healthy_routes())

    run = module_runner(
        module_name,
        {
            "endpoints": [{"name": " gpu-1 ", "url": stub.url + "/"}],
            "model": "nomic-embed-text",
            **QUICK_OPTIONS[module_name],
        },
    )

    assert not run.failed, run.result
    assert run.result["endpoints"][0]["name"] == "gpu-1"
    assert run.result["endpoints"][0]["url"] == stub.url
