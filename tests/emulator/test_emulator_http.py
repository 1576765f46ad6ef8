"""Liveness, version, listing and request errors of the emulator over HTTP."""

import re

import pytest


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/", 200, "Ollama is running"),
        ("/api/nothing", 404, "404 page not found"),
        ("/api/embed", 405, "405 method not allowed"),
    ],
    ids=["root-says-running", "unknown-path-404", "wrong-method-405"],
)
def test_get_returns_text(emulator, path, status, text):
    response = emulator.client.get(path)
    assert response.status_code == status
    assert response.text == text


def test_root_head_answers_200_without_body(emulator):
    response = emulator.client.head("/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len("Ollama is running"))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/version", {"version": "0.0.0-dev"}),
        ("/api/tags", {"models": []}),
        ("/api/ps", {"models": []}),
    ],
    ids=[
        "version-source-tree-default",
        "tags-empty-before-pull",
        "ps-empty-before-embed",
    ],
)
def test_get_returns_json(emulator, path, body):
    response = emulator.client.get(path)
    assert response.status_code == 200
    assert response.json() == body


@pytest.mark.parametrize("path", ["/api/embed", "/api/embeddings", "/api/pull"])
def test_invalid_json_is_400_with_error(emulator, path):
    response = emulator.client.post(path, content=b"{not json")
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)
    assert response.json()["error"]


@pytest.mark.parametrize("path", ["/api/embed", "/api/embeddings", "/api/pull"])
def test_empty_body_is_missing_request_body(emulator, path):
    response = emulator.client.post(path, content=b"")
    assert response.status_code == 400
    assert response.json() == {"error": "missing request body"}


def test_json_array_body_is_400(emulator):
    response = emulator.client.post("/api/embed", json=["nomic-embed-text"])
    assert response.status_code == 400
    assert "cannot unmarshal array" in response.json()["error"]


def test_wrong_field_type_is_400(emulator):
    response = emulator.client.post("/api/embed", json={"model": 5, "input": "x"})
    assert response.status_code == 400
    assert "EmbedRequest.model of type string" in response.json()["error"]


def test_delete_missing_model_is_404(emulator):
    response = emulator.client.request(
        "DELETE", "/api/delete", json={"model": "nomic-embed-text"}
    )
    assert response.status_code == 404
    assert response.json() == {"error": "model 'nomic-embed-text' not found"}


def test_delete_pulled_model_removes_it(emulator):
    emulator.pull("nomic-embed-text")

    response = emulator.client.request(
        "DELETE", "/api/delete", json={"model": "nomic-embed-text"}
    )
    assert response.status_code == 200
    assert emulator.client.get("/api/tags").json() == {"models": []}
    blobs = list((emulator.tmp_path / "models" / "blobs").glob("sha256-*"))
    assert blobs == []


def test_delete_keeps_blobs_of_other_tag(emulator):
    emulator.pull("nomic-embed-text")
    emulator.pull("nomic-embed-text:v1.5")

    emulator.client.request("DELETE", "/api/delete", json={"model": "nomic-embed-text"})

    names = [
        model["name"] for model in emulator.client.get("/api/tags").json()["models"]
    ]
    assert names == ["nomic-embed-text:v1.5"]
    response = emulator.client.post(
        "/api/embed", json={"model": "nomic-embed-text:v1.5", "input": "x"}
    )
    assert response.status_code == 200


def test_request_lines_logged_to_stderr(emulator):
    emulator.client.get("/api/version")
    emulator.close()

    log = emulator.tmp_path / f"emulator-{emulator.base_url.rsplit(':', 1)[1]}.log"
    text = log.read_text()
    assert re.search(r'\| 200 \|.*\| +127\.0\.0\.1 \| GET +"/api/version"', text)
    assert "Listening on 127.0.0.1:" in text
