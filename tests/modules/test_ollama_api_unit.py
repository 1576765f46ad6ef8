"""Unit tests of module_utils/ollama_api.py.

Most tests call pure functions. The client context test sends GET / to the
emulator on loopback.
"""

from __future__ import annotations

import math

import pytest
from ansible.module_utils.ollama_api import (
    EmbeddingCheckError,
    InvalidEndpointError,
    OllamaClient,
    OllamaPullError,
    build_limits,
    build_timeout,
    check_embedding,
    compare_versions,
    find_model,
    is_permanent_pull_error,
    model_key,
    normalize_model_name,
    parse_version,
    read_pull_stream,
    validate_endpoint_url,
    validate_endpoints,
    version_at_least,
)
from module_support import OllamaServer


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nomic-embed-text", "nomic-embed-text:latest"),
        ("nomic-embed-text:latest", "nomic-embed-text:latest"),
        ("nomic-embed-text:v1.5", "nomic-embed-text:v1.5"),
        ("  all-minilm ", "all-minilm:latest"),
        ("library/all-minilm", "all-minilm:latest"),
        ("registry.ollama.ai/library/all-minilm:v2", "all-minilm:v2"),
        ("jina/jina-embeddings-v2-base-en", "jina/jina-embeddings-v2-base-en:latest"),
        ("hf.co/user/repo:Q4_K_M", "hf.co/user/repo:Q4_K_M"),
        ("localhost:5000/team/model", "localhost:5000/team/model:latest"),
        ("localhost:5000/team/model:v3", "localhost:5000/team/model:v3"),
    ],
)
def test_normalize_model_name_forms(name: str, expected: str) -> None:
    assert normalize_model_name(name) == expected


@pytest.mark.parametrize(
    "name", ["", "   ", "model:", "/model", "ns//model", "m@sha256:ab"]
)
def test_normalize_model_name_rejects_invalid(name: str) -> None:
    with pytest.raises(ValueError):
        normalize_model_name(name)


def test_model_key_ignores_case_and_default_tag() -> None:
    assert model_key("Nomic-Embed-Text") == model_key("nomic-embed-text:latest")


def test_find_model_matches_bare_name() -> None:
    models = [
        {"name": "all-minilm:latest", "digest": "a"},
        {"name": "nomic-embed-text:latest", "digest": "b"},
    ]

    entry = find_model(models, "nomic-embed-text")

    assert entry is not None
    assert entry["digest"] == "b"


def test_find_model_tag_mismatch_is_none() -> None:
    models = [{"name": "nomic-embed-text:v1.5", "digest": "a"}]

    assert find_model(models, "nomic-embed-text") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.1.34", (0, 1, 34, None)),
        ("0.32.14", (0, 32, 14, None)),
        ("0.33.0-rc2", (0, 33, 0, ("rc2",))),
        ("v0.5.1", (0, 5, 1, None)),
        ("0.6", (0, 6, 0, None)),
        ("1.2.3-rc.1+build.7", (1, 2, 3, ("rc", 1))),
    ],
)
def test_parse_version_forms(text: str, expected: tuple[object, ...]) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["", "latest", "0", "0.1.x", "1.2.3.4"])
def test_parse_version_rejects_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        parse_version(text)


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("0.1.34", "0.32.14"),
        ("0.1.9", "0.1.34"),
        ("0.32.14", "0.33.0-rc2"),
        ("0.33.0-rc2", "0.33.0"),
        ("0.33.0-rc2", "0.33.0-rc10"),
        ("0.33.0-rc.2", "0.33.0-rc.10"),
        ("0.33.0-alpha", "0.33.0-beta"),
        ("0.33.0-1", "0.33.0-rc1"),
    ],
)
def test_compare_versions_order(older: str, newer: str) -> None:
    assert compare_versions(older, newer) == -1
    assert compare_versions(newer, older) == 1


def test_compare_versions_equal_ignores_build() -> None:
    assert compare_versions("0.1.34+abc", "0.1.34") == 0


def test_version_at_least_equal_passes() -> None:
    assert version_at_least("0.1.34", "0.1.34")


def test_version_at_least_older_fails() -> None:
    assert not version_at_least("0.1.33", "0.1.34")


def test_version_at_least_prerelease_of_minimum_fails() -> None:
    assert not version_at_least("0.33.0-rc2", "0.33.0")


def test_version_at_least_numeric_not_lexical() -> None:
    assert version_at_least("0.32.14", "0.4.0")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:11434", "https://gpu-1.example:443/", "http://[::1]:11434"],
)
def test_validate_endpoint_url_accepts(url: str) -> None:
    assert validate_endpoint_url(url) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    ["http://0.0.0.0:11434", "http://[::]:11434", "http://0.0.0.0"],
)
def test_validate_endpoint_url_rejects_unspecified(url: str) -> None:
    with pytest.raises(InvalidEndpointError) as error:
        validate_endpoint_url(url, name="gpu-1")

    assert "gpu-1" in str(error.value)
    assert "reachable address" in str(error.value)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://gpu-1:11434",
        "gpu-1:11434",
        "127.0.0.1:11434",
        "http://",
        "http://h:99999",
    ],
)
def test_validate_endpoint_url_rejects_invalid(url: str) -> None:
    with pytest.raises(InvalidEndpointError):
        validate_endpoint_url(url, name="gpu-1")


def test_validate_endpoints_strips_and_normalizes() -> None:
    endpoints = [
        {"name": " gpu-1 ", "url": "http://gpu-1.example:11434/"},
        {"name": "gpu-2", "url": " https://gpu-2.example "},
    ]

    assert validate_endpoints(endpoints) == [
        {"name": "gpu-1", "url": "http://gpu-1.example:11434"},
        {"name": "gpu-2", "url": "https://gpu-2.example"},
    ]


def test_validate_endpoints_rejects_empty_list() -> None:
    with pytest.raises(ValueError) as error:
        validate_endpoints([])

    assert str(error.value) == "endpoints must list at least one endpoint"


def test_validate_endpoints_rejects_empty_name() -> None:
    endpoints = [{"name": "  ", "url": "http://gpu-1.example:11434"}]

    with pytest.raises(ValueError) as error:
        validate_endpoints(endpoints)

    assert str(error.value) == (
        "endpoint with url 'http://gpu-1.example:11434' has an empty name"
    )


def test_validate_endpoints_names_bad_url() -> None:
    endpoints = [
        {"name": "gpu-1", "url": "http://gpu-1.example:11434"},
        {"name": "gpu-2", "url": "http://0.0.0.0:11434"},
    ]

    with pytest.raises(InvalidEndpointError) as error:
        validate_endpoints(endpoints)

    assert str(error.value).startswith("endpoint gpu-2: URL 'http://0.0.0.0:11434'")


def test_client_context_closes_connections(ollama_server: OllamaServer) -> None:
    with OllamaClient(ollama_server.url, build_timeout(2, 10)) as client:
        assert client.ping() == "Ollama is running"
        assert not client._client.is_closed

    assert client._client.is_closed


def test_client_context_closes_on_error() -> None:
    client = OllamaClient("http://127.0.0.1:9", build_timeout(2, 10))

    with pytest.raises(RuntimeError), client:
        raise RuntimeError("failure inside the block")

    assert client._client.is_closed


def test_build_timeout_sets_every_phase() -> None:
    timeout = build_timeout(2, 30)

    assert timeout.connect == 2
    assert timeout.read == 30
    assert timeout.write == 30
    assert timeout.pool == 2


def test_build_limits_matches_concurrency() -> None:
    limits = build_limits(4)

    assert limits.max_connections == 4
    assert limits.max_keepalive_connections == 4


def test_check_embedding_returns_length() -> None:
    assert check_embedding([0.1, -0.2, 0.3], 3) == 3


def test_check_embedding_without_dimensions() -> None:
    assert check_embedding([0.5] * 5, None) == 5


def test_check_embedding_empty_vector_fails() -> None:
    with pytest.raises(EmbeddingCheckError, match="empty vector"):
        check_embedding([], 768)


def test_check_embedding_wrong_dimension_fails() -> None:
    with pytest.raises(EmbeddingCheckError, match="384 dimensions, expected 768"):
        check_embedding([0.1] * 384, 768)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "0.1", None, True])
def test_check_embedding_bad_value_fails(bad: object) -> None:
    with pytest.raises(EmbeddingCheckError, match="index 1"):
        check_embedding([0.1, bad, 0.3], 3)


def test_check_embedding_not_list_fails() -> None:
    with pytest.raises(EmbeddingCheckError, match="not a list"):
        check_embedding({"embedding": []}, 3)


def test_read_pull_stream_success() -> None:
    lines = [
        '{"status":"pulling manifest"}',
        "",
        '{"status":"pulling abc","digest":"sha256:abc","total":10,"completed":10}',
        '{"status":"verifying sha256 digest"}',
        '{"status":"writing manifest"}',
        '{"status":"success"}',
    ]
    seen: list[str] = []

    final = read_pull_stream(
        "m:latest", iter(lines), on_status=lambda s: seen.append(s["status"])
    )

    assert final == {"status": "success"}
    assert seen[0] == "pulling manifest"
    assert len(seen) == 5


def test_read_pull_stream_error_line_raises() -> None:
    lines = [
        '{"status":"pulling manifest"}',
        '{"error":"pull model manifest: file does not exist"}',
    ]

    with pytest.raises(OllamaPullError) as error:
        read_pull_stream("nope:latest", iter(lines))

    assert "file does not exist" in str(error.value)
    assert error.value.retryable is False


def test_read_pull_stream_transient_error_is_retryable() -> None:
    lines = ['{"error":"max retries exceeded: unexpected EOF"}']

    with pytest.raises(OllamaPullError) as error:
        read_pull_stream("m:latest", iter(lines))

    assert error.value.retryable is True


def test_read_pull_stream_without_success_raises() -> None:
    lines = ['{"status":"pulling manifest"}', '{"status":"pulling abc"}']

    with pytest.raises(OllamaPullError, match="ended before success") as error:
        read_pull_stream("m:latest", iter(lines))

    assert error.value.retryable is True


def test_read_pull_stream_invalid_json_raises() -> None:
    with pytest.raises(OllamaPullError, match="invalid line"):
        read_pull_stream("m:latest", iter(["<html>"]))


def test_read_pull_stream_deadline_passed_raises() -> None:
    with pytest.raises(OllamaPullError, match="pull timeout exceeded"):
        read_pull_stream("m:latest", iter(['{"status":"x"}']), deadline=0.0)


def test_permanent_pull_errors() -> None:
    assert is_permanent_pull_error("pull model manifest: file does not exist")
    assert is_permanent_pull_error("invalid model name")
    assert not is_permanent_pull_error("connection reset by peer")
