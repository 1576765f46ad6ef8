"""Tests of ollama_model against the Ollama emulator, plus its retry logic."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from ansible.module_utils.ollama_api import (
    OllamaHTTPError,
    OllamaPullError,
    OllamaUnreachableError,
)
from module_support import StubRoute, adhoc_result, closed_port_url, run_ansible_adhoc
from ollama_model import build_diff, is_retryable, pull_with_retries

MODULE = "ollama_model"


def listed_names(url: str) -> list[str]:
    response = httpx.get(f"{url}/api/tags", timeout=10)
    response.raise_for_status()
    return [entry["name"] for entry in response.json()["models"]]


def model_args(url: str, names: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": names,
        "url": url,
        "connect_timeout": 2,
        "request_timeout": 10,
        "idle_timeout": 10,
        "retries": 1,
        "retry_delay": 0,
        **extra,
    }


class FakePullClient:
    """A client whose pull raises the queued errors, then succeeds."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = list(errors)
        self.calls = 0

    def pull(self, model: str, idle_timeout: float, total_timeout: float) -> dict:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"status": "success"}


def test_pull_missing_model(ollama_server: Any, module_runner: Any) -> None:
    run = module_runner(MODULE, model_args(ollama_server.url, ["nomic-embed-text"]))

    model = run.result["models"][0]
    assert not run.failed, run.result
    assert run.result["changed"] is True
    assert model["name"] == "nomic-embed-text:latest"
    assert model["changed"] is True
    assert model["digest"]
    assert model["size"] > 0
    assert "nomic-embed-text:latest" in listed_names(ollama_server.url)


def test_present_model_unchanged(ollama_server: Any, module_runner: Any) -> None:
    first = module_runner(MODULE, model_args(ollama_server.url, ["nomic-embed-text"]))

    second = module_runner(
        MODULE, model_args(ollama_server.url, ["nomic-embed-text:latest"])
    )

    assert not second.failed, second.result
    assert second.result["changed"] is False
    assert second.result["models"][0]["changed"] is False
    assert second.result["models"][0]["digest"] == first.result["models"][0]["digest"]


def test_several_models_each_reported(ollama_server: Any, module_runner: Any) -> None:
    module_runner(MODULE, model_args(ollama_server.url, ["all-minilm"]))

    run = module_runner(
        MODULE, model_args(ollama_server.url, ["all-minilm", "nomic-embed-text:v1.5"])
    )

    models = run.result["models"]
    assert not run.failed, run.result
    assert [entry["name"] for entry in models] == [
        "all-minilm:latest",
        "nomic-embed-text:v1.5",
    ]
    assert models[0]["changed"] is False
    assert models[1]["changed"] is True


def test_unknown_model_fails(ollama_server: Any, module_runner: Any) -> None:
    run = module_runner(
        MODULE,
        model_args(ollama_server.url, ["no-such-model"], retries=3, retry_delay=0.1),
    )

    assert run.failed
    assert "no-such-model" in run.result["msg"]
    assert "file does not exist" in run.result["msg"]
    assert "check the spelling in this host's ollama_models" in run.result["msg"]


@pytest.mark.parametrize(
    "route",
    [
        StubRoute(500, {"error": "pull model manifest: file does not exist"}),
        StubRoute(
            200,
            '{"status":"pulling manifest"}\n'
            '{"error":"pull model manifest: file does not exist"}\n',
        ),
    ],
    ids=["http-500", "error-line"],
)
def test_unknown_model_pulled_once(
    stub_factory: Any, module_runner: Any, route: Any
) -> None:
    server = stub_factory(
        {
            ("GET", "/api/tags"): StubRoute(200, {"models": []}),
            ("POST", "/api/pull"): route,
        }
    )

    run = module_runner(
        MODULE, model_args(server.url, ["no-such-model"], retries=3, retry_delay=0.1)
    )

    pulls = [request for request in server.requests if request[1] == "/api/pull"]
    assert run.failed
    assert "file does not exist" in run.result["msg"]
    assert len(pulls) == 1


def test_check_mode_does_not_pull(ollama_server: Any, module_runner: Any) -> None:
    run = module_runner(
        MODULE,
        model_args(
            ollama_server.url,
            ["nomic-embed-text"],
            _ansible_check_mode=True,
            _ansible_diff=True,
        ),
    )

    assert not run.failed, run.result
    assert run.result["changed"] is True
    assert run.result["models"][0]["digest"] is None
    assert run.result["diff"]["before"] == {"models": []}
    assert run.result["diff"]["after"] == {"models": ["nomic-embed-text:latest"]}
    assert listed_names(ollama_server.url) == []


def test_absent_deletes_model(ollama_server: Any, module_runner: Any) -> None:
    module_runner(MODULE, model_args(ollama_server.url, ["all-minilm"]))

    run = module_runner(
        MODULE, model_args(ollama_server.url, ["all-minilm"], state="absent")
    )

    assert not run.failed, run.result
    assert run.result["changed"] is True
    assert run.result["models"][0]["digest"] is None
    assert "all-minilm:latest" not in listed_names(ollama_server.url)


def test_absent_missing_model_unchanged(ollama_server: Any, module_runner: Any) -> None:
    run = module_runner(
        MODULE, model_args(ollama_server.url, ["all-minilm"], state="absent")
    )

    assert not run.failed, run.result
    assert run.result["changed"] is False


def test_check_mode_absent_keeps_model(ollama_server: Any, module_runner: Any) -> None:
    module_runner(MODULE, model_args(ollama_server.url, ["all-minilm"]))

    run = module_runner(
        MODULE,
        model_args(
            ollama_server.url, ["all-minilm"], state="absent", _ansible_check_mode=True
        ),
    )

    assert run.result["changed"] is True
    assert "all-minilm:latest" in listed_names(ollama_server.url)


def test_explicit_tag_pulled_beside_latest(
    ollama_server: Any, module_runner: Any
) -> None:
    module_runner(MODULE, model_args(ollama_server.url, ["nomic-embed-text"]))

    run = module_runner(
        MODULE,
        model_args(ollama_server.url, ["nomic-embed-text", "nomic-embed-text:v1.5"]),
    )

    assert not run.failed, run.result
    assert run.result["models"][0]["changed"] is False
    assert run.result["models"][1]["changed"] is True
    assert "nomic-embed-text:v1.5" in listed_names(ollama_server.url)


def test_prune_deletes_unlisted_models(ollama_server: Any, module_runner: Any) -> None:
    module_runner(
        MODULE,
        model_args(ollama_server.url, ["all-minilm", "nomic-embed-text:v1.5"]),
    )

    run = module_runner(
        MODULE, model_args(ollama_server.url, ["nomic-embed-text"], prune=True)
    )

    listed = listed_names(ollama_server.url)
    assert not run.failed, run.result
    assert run.result["changed"] is True
    assert sorted(run.result["removed"]) == [
        "all-minilm:latest",
        "nomic-embed-text:v1.5",
    ]
    assert listed == ["nomic-embed-text:latest"]


def test_prune_check_mode_keeps_models(ollama_server: Any, module_runner: Any) -> None:
    module_runner(MODULE, model_args(ollama_server.url, ["all-minilm"]))

    run = module_runner(
        MODULE,
        model_args(ollama_server.url, [], prune=True, _ansible_check_mode=True),
    )

    assert not run.failed, run.result
    assert run.result["changed"] is True
    assert run.result["removed"] == ["all-minilm:latest"]
    assert listed_names(ollama_server.url) == ["all-minilm:latest"]


def test_prune_nothing_unlisted_unchanged(
    ollama_server: Any, module_runner: Any
) -> None:
    module_runner(MODULE, model_args(ollama_server.url, ["all-minilm"]))

    run = module_runner(
        MODULE, model_args(ollama_server.url, ["all-minilm:latest"], prune=True)
    )

    assert not run.failed, run.result
    assert run.result["changed"] is False
    assert run.result["removed"] == []


def test_prune_with_absent_rejected(module_runner: Any) -> None:
    run = module_runner(
        MODULE, model_args("http://127.0.0.1:1", ["x"], state="absent", prune=True)
    )

    assert run.failed
    assert "prune" in run.result["msg"]


def test_unreachable_server_fails(module_runner: Any) -> None:
    url = closed_port_url()

    run = module_runner(MODULE, model_args(url, ["nomic-embed-text"]))

    assert run.failed
    assert url in run.result["msg"]
    assert "connection refused" in run.result["msg"]


def test_unspecified_address_rejected(module_runner: Any) -> None:
    run = module_runner(MODULE, model_args("http://0.0.0.0:11434", ["x"]))

    assert run.failed
    assert "reachable address" in run.result["msg"]


def test_invalid_model_name_rejected(module_runner: Any) -> None:
    run = module_runner(MODULE, model_args("http://127.0.0.1:11434", ["model:"]))

    assert run.failed
    assert "empty part" in run.result["msg"]


def test_pull_not_listed_afterwards_fails(
    stub_factory: Any, module_runner: Any
) -> None:
    server = stub_factory(
        {
            ("GET", "/api/tags"): StubRoute(200, {"models": []}),
            ("POST", "/api/pull"): StubRoute(200, '{"status":"success"}\n'),
        }
    )

    run = module_runner(MODULE, model_args(server.url, ["nomic-embed-text"]))

    assert run.failed
    assert "/api/tags does not list the model" in run.result["msg"]


def test_error_line_in_stream_fails(stub_factory: Any, module_runner: Any) -> None:
    stream = '{"status":"pulling manifest"}\n{"error":"write /models: no space left"}\n'
    server = stub_factory(
        {
            ("GET", "/api/tags"): StubRoute(200, {"models": []}),
            ("POST", "/api/pull"): StubRoute(200, stream),
        }
    )

    run = module_runner(MODULE, model_args(server.url, ["nomic-embed-text"], retries=2))

    pulls = [request for request in server.requests if request[1] == "/api/pull"]
    assert run.failed
    assert "no space left" in run.result["msg"]
    assert len(pulls) == 3


def test_idle_stream_times_out(stub_factory: Any, module_runner: Any) -> None:
    server = stub_factory(
        {
            ("GET", "/api/tags"): StubRoute(200, {"models": []}),
            ("POST", "/api/pull"): StubRoute(200, '{"status":"success"}\n', delay=3),
        }
    )

    run = module_runner(
        MODULE,
        model_args(server.url, ["nomic-embed-text"], idle_timeout=0.5, retries=0),
    )

    assert run.failed
    assert "idle timeout" in run.result["msg"]


def test_pull_retries_until_success() -> None:
    client = FakePullClient(
        [
            OllamaUnreachableError("connection refused"),
            OllamaPullError("m", "unexpected EOF", retryable=True),
        ]
    )

    failures = pull_with_retries(client, "m", 1, 10, retries=2, retry_delay=0)

    assert client.calls == 3
    assert len(failures) == 2


def test_pull_retries_are_bounded() -> None:
    client = FakePullClient([OllamaUnreachableError("refused")] * 5)

    with pytest.raises(OllamaUnreachableError):
        pull_with_retries(client, "m", 1, 10, retries=2, retry_delay=0)

    assert client.calls == 3


def test_pull_permanent_error_not_retried() -> None:
    client = FakePullClient(
        [OllamaPullError("m", "file does not exist", retryable=False)]
    )

    with pytest.raises(OllamaPullError):
        pull_with_retries(client, "m", 1, 10, retries=3, retry_delay=0)

    assert client.calls == 1


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OllamaHTTPError("POST", "u", 500, "boom"), True),
        (OllamaHTTPError("POST", "u", 429, "busy"), True),
        (OllamaHTTPError("POST", "u", 400, "invalid model name"), False),
        (OllamaUnreachableError("refused"), True),
    ],
)
def test_is_retryable_by_error(error: Exception, expected: bool) -> None:
    assert is_retryable(error) is expected


def test_build_diff_absent() -> None:
    results = [
        {"name": "a:latest", "changed": True},
        {"name": "b:latest", "changed": False},
    ]

    diff = build_diff(results, "absent")

    assert diff["before"] == {"models": ["a:latest"]}
    assert diff["after"] == {"models": []}


def test_adhoc_ansible_pulls_model(ollama_server: Any) -> None:
    args = model_args(ollama_server.url, ["all-minilm"])

    completed = run_ansible_adhoc(MODULE, args)

    result = adhoc_result(completed)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert result["changed"] is True
    assert result["models"][0]["digest"]


def test_adhoc_ansible_check_mode(ollama_server: Any) -> None:
    args = model_args(ollama_server.url, ["all-minilm"])

    completed = run_ansible_adhoc(MODULE, args, ["--check"])

    result = adhoc_result(completed)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert result["changed"] is True
    assert listed_names(ollama_server.url) == []


def test_broken_pull_retried_and_resumed(
    ollama_factory: Any, module_runner: Any
) -> None:
    server = ollama_factory("flaky", {"OLLAMA_EMULATOR_PULL_FAILURES": "1"})

    run = module_runner(
        MODULE, model_args(server.url, ["nomic-embed-text"], retries=1, retry_delay=0)
    )

    assert not run.failed, run.result
    assert run.result["models"][0]["changed"] is True
    assert any("after 1 failed attempts" in text for text in run.warnings)
    assert any("unexpected EOF" in text for text in run.warnings)
    assert "nomic-embed-text:latest" in listed_names(server.url)


def test_broken_pull_without_retries_fails(
    ollama_factory: Any, module_runner: Any
) -> None:
    server = ollama_factory("flaky", {"OLLAMA_EMULATOR_PULL_FAILURES": "1"})

    run = module_runner(MODULE, model_args(server.url, ["nomic-embed-text"], retries=0))

    assert run.failed
    assert "unexpected EOF" in run.result["msg"]
