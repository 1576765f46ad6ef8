"""Tests of ollama_verify against the Ollama emulator and a stub server.

The stub server covers behaviour that the emulator does not produce on request:
an empty vector, an old version, an HTTP error and slow responses.
"""

from __future__ import annotations

import time
from typing import Any

from local_processes import pull_model
from module_support import (
    StubRoute,
    adhoc_result,
    closed_port_url,
    healthy_routes,
    run_ansible_adhoc,
)

MODULE = "ollama_verify"
MODEL = "nomic-embed-text"


def verify_args(endpoints: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {
        "endpoints": endpoints,
        "model": MODEL,
        "dimensions": 768,
        "connect_timeout": 2,
        "read_timeout": 10,
        **extra,
    }


def test_emulator_endpoint_passes(ollama_server: Any, module_runner: Any) -> None:
    pull_model(ollama_server.url, MODEL)

    run = module_runner(
        MODULE, verify_args([{"name": "gpu-1", "url": ollama_server.url}])
    )

    endpoint = run.result["endpoints"][0]
    assert not run.failed, run.result
    assert run.result["changed"] is False
    assert endpoint["ok"] is True
    assert endpoint["error"] is None
    assert endpoint["name"] == "gpu-1"
    assert endpoint["model"] == "nomic-embed-text:latest"
    assert endpoint["dimensions"] == 768
    assert endpoint["digest"]
    assert endpoint["version"]
    assert endpoint["latency_ms"] >= 0


def test_model_missing_names_pull_hint(ollama_server: Any, module_runner: Any) -> None:
    run = module_runner(
        MODULE, verify_args([{"name": "gpu-1", "url": ollama_server.url}])
    )

    message = run.result["msg"]
    assert run.failed
    assert "gpu-1" in message
    assert "model nomic-embed-text:latest not found" in message
    assert "ollama pull nomic-embed-text:latest" in message
    assert run.result["endpoints"][0]["ok"] is False


def test_wrong_dimensions_fail(ollama_server: Any, module_runner: Any) -> None:
    pull_model(ollama_server.url, MODEL)

    run = module_runner(
        MODULE,
        verify_args([{"name": "gpu-1", "url": ollama_server.url}], dimensions=1024),
    )

    assert run.failed
    assert "768 dimensions, expected 1024" in run.result["msg"]
    assert run.result["endpoints"][0]["dimensions"] == 768


def test_unreachable_endpoint_fails(module_runner: Any) -> None:
    url = closed_port_url()

    run = module_runner(MODULE, verify_args([{"name": "gpu-9", "url": url}]))

    message = run.result["msg"]
    assert run.failed
    assert "gpu-9" in message
    assert "unreachable" in message
    assert "connection refused" in message


def test_each_failing_endpoint_named(
    ollama_server: Any, stub_factory: Any, module_runner: Any
) -> None:
    pull_model(ollama_server.url, MODEL)
    old = stub_factory(healthy_routes(version="0.1.33"))
    endpoints = [
        {"name": "gpu-1", "url": ollama_server.url},
        {"name": "gpu-2", "url": closed_port_url()},
        {"name": "gpu-3", "url": old.url},
    ]

    run = module_runner(MODULE, verify_args(endpoints))

    results = {entry["name"]: entry for entry in run.result["endpoints"]}
    message = run.result["msg"]
    assert run.failed
    assert message.startswith("2 of 3 Ollama endpoints failed")
    assert "gpu-1" not in message
    assert "gpu-2" in message
    assert "gpu-3" in message
    assert "version 0.1.33 is below the minimum 0.1.34" in message
    assert results["gpu-1"]["ok"] is True
    assert results["gpu-2"]["ok"] is False
    assert results["gpu-3"]["version"] == "0.1.33"
    assert [entry["name"] for entry in run.result["endpoints"]] == [
        "gpu-1",
        "gpu-2",
        "gpu-3",
    ]


def test_prerelease_below_minimum_fails(stub_factory: Any, module_runner: Any) -> None:
    server = stub_factory(healthy_routes(version="0.33.0-rc2"))

    run = module_runner(
        MODULE,
        verify_args([{"name": "gpu-1", "url": server.url}], min_version="0.33.0"),
    )

    assert run.failed
    assert "version 0.33.0-rc2 is below the minimum 0.33.0" in run.result["msg"]


def test_empty_vector_fails(stub_factory: Any, module_runner: Any) -> None:
    server = stub_factory(healthy_routes(vector=[]))

    run = module_runner(
        MODULE, verify_args([{"name": "gpu-1", "url": server.url}], dimensions=None)
    )

    assert run.failed
    assert "empty vector" in run.result["msg"]


def test_non_finite_value_fails(stub_factory: Any, module_runner: Any) -> None:
    routes = healthy_routes()
    routes[("POST", "/api/embed")] = StubRoute(200, '{"embeddings": [[0.1, NaN, 0.2]]}')
    server = stub_factory(routes)

    run = module_runner(
        MODULE, verify_args([{"name": "gpu-1", "url": server.url}], dimensions=3)
    )

    assert run.failed
    assert "not a finite number" in run.result["msg"]


def test_http_error_text_reported(stub_factory: Any, module_runner: Any) -> None:
    routes = healthy_routes()
    busy = "server busy, please try again.  maximum pending requests exceeded"
    routes[("POST", "/api/embed")] = StubRoute(503, {"error": busy})
    server = stub_factory(routes)

    run = module_runner(MODULE, verify_args([{"name": "gpu-1", "url": server.url}]))

    message = run.result["msg"]
    assert run.failed
    assert "HTTP 503" in message
    assert busy in message


def test_read_timeout_reported(stub_factory: Any, module_runner: Any) -> None:
    routes = healthy_routes()
    routes[("POST", "/api/embed")] = StubRoute(200, {"embeddings": [[0.1]]}, delay=3)
    server = stub_factory(routes)

    run = module_runner(
        MODULE,
        verify_args([{"name": "gpu-1", "url": server.url}], read_timeout=0.5),
    )

    assert run.failed
    assert "no response within the read timeout of 0.5 s" in run.result["msg"]


def test_endpoints_checked_concurrently(stub_factory: Any, module_runner: Any) -> None:
    endpoints = []
    for index in range(4):
        routes = healthy_routes()
        routes[("POST", "/api/embed")] = StubRoute(
            200, {"embeddings": [[0.1] * 768]}, delay=0.8
        )
        endpoints.append({"name": f"gpu-{index}", "url": stub_factory(routes).url})
    started = time.monotonic()

    run = module_runner(MODULE, verify_args(endpoints, concurrency=4))

    elapsed = time.monotonic() - started
    assert not run.failed, run.result
    assert elapsed < 2.5
    assert all(entry["latency_ms"] >= 700 for entry in run.result["endpoints"])


def test_unspecified_address_rejected(module_runner: Any) -> None:
    run = module_runner(
        MODULE, verify_args([{"name": "gpu-1", "url": "http://0.0.0.0:11434"}])
    )

    message = run.result["msg"]
    assert run.failed
    assert "endpoint gpu-1" in message
    assert "0.0.0.0" in message
    assert "reachable address" in message


def test_invalid_scheme_rejected(module_runner: Any) -> None:
    run = module_runner(
        MODULE, verify_args([{"name": "gpu-1", "url": "ftp://gpu-1.example:11434"}])
    )

    assert run.failed
    assert "scheme must be http or https" in run.result["msg"]


def test_missing_endpoint_url_rejected(module_runner: Any) -> None:
    run = module_runner(MODULE, verify_args([{"name": "gpu-1"}]))

    assert run.failed
    assert "url" in run.result["msg"]


def test_check_mode_runs_checks(ollama_server: Any, module_runner: Any) -> None:
    pull_model(ollama_server.url, MODEL)

    run = module_runner(
        MODULE,
        verify_args(
            [{"name": "gpu-1", "url": ollama_server.url}], _ansible_check_mode=True
        ),
    )

    assert not run.failed, run.result
    assert run.result["endpoints"][0]["dimensions"] == 768


def test_adhoc_ansible_verify_passes(ollama_server: Any) -> None:
    pull_model(ollama_server.url, MODEL)

    completed = run_ansible_adhoc(
        MODULE, verify_args([{"name": "gpu-1", "url": ollama_server.url}])
    )

    result = adhoc_result(completed)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert result["changed"] is False
    assert result["endpoints"][0]["ok"] is True


def test_adhoc_ansible_verify_failure(ollama_server: Any) -> None:
    completed = run_ansible_adhoc(
        MODULE, verify_args([{"name": "gpu-1", "url": ollama_server.url}])
    )

    result = adhoc_result(completed)
    assert completed.returncode != 0
    assert result["failed"] is True
    assert "ollama pull nomic-embed-text:latest" in result["msg"]
