"""/api/pull progress, errors, the store layout and persistence across restarts."""

import json
import re
from datetime import datetime


def _stream(emulator, body):
    response = emulator.client.post("/api/pull", json=body)
    lines = [json.loads(line) for line in response.text.splitlines() if line]
    return response, lines


def test_pull_stream_statuses_in_order(emulator):
    response, lines = _stream(emulator, {"model": "nomic-embed-text"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    statuses = [line["status"] for line in lines]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]


def test_pull_layer_lines_carry_progress(emulator):
    _, lines = _stream(emulator, {"model": "nomic-embed-text"})

    layer_lines = [line for line in lines if line["status"].startswith("pulling ")]
    layer_lines = [line for line in layer_lines if line["status"] != "pulling manifest"]
    assert layer_lines
    for line in layer_lines:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", line["digest"])
        assert line["status"] == f"pulling {line['digest'][7:19]}"
        assert line["total"] > 0
        assert 0 <= line.get("completed", 0) <= line["total"]

    weights = [
        line
        for line in layer_lines
        if line["total"] == max(candidate["total"] for candidate in layer_lines)
    ]
    assert weights[-1]["completed"] == weights[-1]["total"]
    assert weights[-1]["total"] == 274290656


def test_pull_unknown_model_errors_inside_200(emulator):
    response, lines = _stream(emulator, {"model": "no-such-model"})

    assert response.status_code == 200
    assert lines[0] == {"status": "pulling manifest"}
    assert lines[-1] == {"error": "pull model manifest: file does not exist"}


def test_pull_unknown_tag_errors(emulator):
    _, lines = _stream(emulator, {"model": "nomic-embed-text:v9"})
    assert lines[-1] == {"error": "pull model manifest: file does not exist"}


def test_pull_without_stream_returns_success(emulator):
    response = emulator.client.post(
        "/api/pull", json={"model": "nomic-embed-text", "stream": False}
    )
    assert response.status_code == 200
    assert response.json() == {"status": "success"}


def test_pull_without_stream_unknown_is_500(emulator):
    response = emulator.client.post(
        "/api/pull", json={"model": "no-such-model", "stream": False}
    )
    assert response.status_code == 500
    assert response.json() == {"error": "pull model manifest: file does not exist"}


def test_pull_accepts_name_field(emulator):
    response = emulator.client.post(
        "/api/pull", json={"name": "all-minilm", "stream": False, "insecure": True}
    )
    assert response.status_code == 200
    names = [
        model["name"] for model in emulator.client.get("/api/tags").json()["models"]
    ]
    assert names == ["all-minilm:latest"]


def test_pull_invalid_name_is_400(emulator):
    response = emulator.client.post("/api/pull", json={"model": "../../etc/passwd"})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid model name"}


def test_pull_writes_ollama_layout(emulator):
    emulator.pull("nomic-embed-text")

    models = emulator.tmp_path / "models"
    manifest_path = (
        models
        / "manifests"
        / "registry.ollama.ai"
        / "library"
        / "nomic-embed-text"
        / "latest"
    )
    assert manifest_path.is_file()
    manifest = json.loads(manifest_path.read_text())
    assert manifest["schemaVersion"] == 2
    for entry in [manifest["config"], *manifest["layers"]]:
        blob = models / "blobs" / entry["digest"].replace(":", "-")
        assert blob.is_file()


def test_tags_lists_pulled_model_fields(emulator):
    emulator.pull("nomic-embed-text")

    (model,) = emulator.client.get("/api/tags").json()["models"]
    assert model["name"] == "nomic-embed-text:latest"
    assert model["model"] == "nomic-embed-text:latest"
    assert re.fullmatch(r"[0-9a-f]{64}", model["digest"])
    assert model["size"] > 274_000_000
    assert datetime.fromisoformat(model["modified_at"].replace("Z", "+00:00"))
    assert model["details"] == {
        "parent_model": "",
        "format": "gguf",
        "family": "nomic-bert",
        "families": ["nomic-bert"],
        "parameter_size": "137M",
        "quantization_level": "F16",
    }


def test_tag_v15_listed_separately(emulator):
    emulator.pull("nomic-embed-text")
    emulator.pull("nomic-embed-text:v1.5")

    models = emulator.client.get("/api/tags").json()["models"]
    names = sorted(model["name"] for model in models)
    assert names == ["nomic-embed-text:latest", "nomic-embed-text:v1.5"]
    # Both tags name one manifest, as in the public registry.
    assert models[0]["digest"] == models[1]["digest"]


def test_digest_stable_across_stores(start, tmp_path):
    first = start(folder=tmp_path / "one")
    second = start(folder=tmp_path / "two")
    first.pull("nomic-embed-text")
    second.pull("nomic-embed-text")

    first_digest = first.client.get("/api/tags").json()["models"][0]["digest"]
    second_digest = second.client.get("/api/tags").json()["models"][0]["digest"]
    assert first_digest == second_digest


def test_models_differ_in_digest(emulator):
    emulator.pull("nomic-embed-text")
    emulator.pull("all-minilm")

    digests = {m["digest"] for m in emulator.client.get("/api/tags").json()["models"]}
    assert len(digests) == 2


def test_repeat_pull_skips_download(emulator):
    emulator.pull("nomic-embed-text")

    _, lines = _stream(emulator, {"model": "nomic-embed-text"})
    layer_lines = [line for line in lines if "digest" in line]
    assert all(line["completed"] == line["total"] for line in layer_lines)
    assert lines[-1] == {"status": "success"}


def test_restart_keeps_pulled_models(emulator):
    emulator.pull("nomic-embed-text")
    before = emulator.client.get("/api/tags").json()

    emulator.restart()

    after = emulator.client.get("/api/tags").json()
    assert after == before
    response = emulator.client.post(
        "/api/embed", json={"model": "nomic-embed-text", "input": "x"}
    )
    assert response.status_code == 200


def test_injected_failure_then_resume(start):
    emulator = start({"OLLAMA_EMULATOR_PULL_FAILURES": "1"})

    response, lines = _stream(emulator, {"model": "nomic-embed-text"})
    assert response.status_code == 200
    assert lines[-1] == {"error": "max retries exceeded: unexpected EOF"}
    assert emulator.client.get("/api/tags").json() == {"models": []}

    _, lines = _stream(emulator, {"model": "nomic-embed-text"})
    first_progress = next(line for line in lines if line.get("total", 0) > 1_000_000)
    assert first_progress["completed"] > first_progress["total"] // 2
    assert lines[-1] == {"status": "success"}


def test_default_models_dir_is_home(start, tmp_path):
    emulator = start({"OLLAMA_MODELS": None})
    emulator.pull("all-minilm")

    manifest = (
        tmp_path
        / "home"
        / ".ollama"
        / "models"
        / "manifests"
        / "registry.ollama.ai"
        / "library"
        / "all-minilm"
        / "latest"
    )
    assert manifest.is_file()
