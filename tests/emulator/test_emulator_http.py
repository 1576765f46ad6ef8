"""Liveness, version, listing and request errors of the emulator over HTTP."""

import re

import pytest


def test_root_get_says_running(emulator):
    response = emulator.client.get("/")
    assert response.status_code == 200
    assert response.text == "Ollama is running"


def test_root_head_answers_200_without_body(emulator):
    response = emulator.client.head("/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len("Ollama is running"))


def test_version_is_source_tree_default(emulator):
    response = emulator.client.get("/api/version")
    assert response.status_code == 200
    assert response.json() == {"version": "0.0.0-dev"}


def test_tags_empty_before_pull(emulator):
    response = emulator.client.get("/api/tags")
    assert response.status_code == 200
    assert response.json() == {"models": []}


def test_ps_empty_before_embed(emulator):
    response = emulator.client.get("/api/ps")
    assert response.status_code == 200
    assert response.json() == {"models": []}


def test_unknown_path_is_404(emulator):
    response = emulator.client.get("/api/nothing")
    assert response.status_code == 404
    assert response.text == "404 page not found"


def test_wrong_method_is_405(emulator):
    response = emulator.client.get("/api/embed")
    assert response.status_code == 405
    assert response.text == "405 method not allowed"


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
