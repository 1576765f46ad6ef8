"""/api/embed and /api/embeddings: vectors, context limits and errors."""

import math

import pytest

DIMENSIONS = {"nomic-embed-text": 768, "all-minilm": 384, "mxbai-embed-large": 1024}


def _embed(emulator, **body):
    return emulator.client.post("/api/embed", json=body)


@pytest.mark.parametrize(("model", "dimensions"), sorted(DIMENSIONS.items()))
def test_embed_dimension_per_model(embedder, model, dimensions):
    response = _embed(embedder, model=model, input="hello world")
    assert response.status_code == 200
    assert len(response.json()["embeddings"][0]) == dimensions


def test_embed_response_fields(embedder):
    body = _embed(embedder, model="nomic-embed-text", input="hello world").json()
    assert body["model"] == "nomic-embed-text"
    assert isinstance(body["total_duration"], int)
    assert isinstance(body["load_duration"], int)
    assert body["prompt_eval_count"] == 2


def test_embed_vector_finite_and_normalised(embedder):
    body = _embed(embedder, model="nomic-embed-text", input="a finite vector").json()
    vector = body["embeddings"][0]
    assert all(isinstance(value, float) for value in vector)
    assert all(math.isfinite(value) for value in vector)
    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-9)


def test_embed_deterministic(embedder):
    first = _embed(embedder, model="nomic-embed-text", input="same text").json()
    second = _embed(embedder, model="nomic-embed-text", input="same text").json()
    assert first["embeddings"] == second["embeddings"]


def test_embed_deterministic_across_restart(tmp_path, start):
    first = start(folder=tmp_path / "a")
    first.pull("nomic-embed-text")
    before = _embed(first, model="nomic-embed-text", input="x y").json()["embeddings"]
    first.restart()
    after = _embed(first, model="nomic-embed-text", input="x y").json()["embeddings"]
    assert before == after


def test_embed_task_prefix_changes_vector(embedder):
    document = _embed(
        embedder, model="nomic-embed-text", input="search_document: the cat"
    ).json()["embeddings"][0]
    query = _embed(
        embedder, model="nomic-embed-text", input="search_query: the cat"
    ).json()["embeddings"][0]
    assert document != query


def test_embed_models_differ(embedder):
    nomic = _embed(embedder, model="nomic-embed-text", input="x", dimensions=384)
    minilm = _embed(embedder, model="all-minilm", input="x")
    assert nomic.json()["embeddings"] != minilm.json()["embeddings"]


def test_embed_tags_share_weights(embedder):
    latest = _embed(embedder, model="nomic-embed-text:latest", input="x")
    bare = _embed(embedder, model="nomic-embed-text", input="x")
    assert latest.json()["embeddings"] == bare.json()["embeddings"]


def test_embed_list_input_one_vector_each(embedder):
    body = _embed(embedder, model="nomic-embed-text", input=["one", "two", "three"])
    embeddings = body.json()["embeddings"]
    assert len(embeddings) == 3
    assert embeddings[0] != embeddings[1]
    single = _embed(embedder, model="nomic-embed-text", input="two").json()
    assert embeddings[1] == single["embeddings"][0]


def test_embed_empty_list_is_warm_up(embedder):
    response = _embed(embedder, model="nomic-embed-text", input=[])
    assert response.status_code == 200
    assert response.json() == {"model": "nomic-embed-text", "embeddings": []}


def test_embed_with_prompt_returns_empty(embedder):
    response = _embed(embedder, model="nomic-embed-text", prompt="hello")
    assert response.status_code == 200
    assert response.json()["embeddings"] == []


def test_embed_invalid_input_type_is_400(embedder):
    response = _embed(embedder, model="nomic-embed-text", input=["ok", 5])
    assert response.status_code == 400
    assert response.json() == {"error": "invalid input type"}


def test_embed_unknown_model_is_404(embedder):
    response = _embed(embedder, model="no-such-model", input="x")
    assert response.status_code == 404
    assert response.json() == {
        "error": 'model "no-such-model" not found, try pulling it first'
    }


def test_embed_unpulled_tag_is_404(embedder):
    response = _embed(embedder, model="nomic-embed-text:v1.5", input="x")
    assert response.status_code == 404
    assert response.json() == {
        "error": 'model "nomic-embed-text:v1.5" not found, try pulling it first'
    }


def test_embed_missing_model_is_400(embedder):
    response = _embed(embedder, input="x")
    assert response.status_code == 400
    assert response.json() == {"error": "model is required"}


def test_embed_over_context_without_truncate_is_400(embedder):
    text = " ".join(["word"] * 2049)
    response = _embed(embedder, model="nomic-embed-text", input=text, truncate=False)
    assert response.status_code == 400
    assert response.json() == {"error": "the input length exceeds the context length"}


def test_embed_at_context_limit_accepted(embedder):
    text = " ".join(["word"] * 2048)
    response = _embed(embedder, model="nomic-embed-text", input=text, truncate=False)
    assert response.status_code == 200
    assert response.json()["prompt_eval_count"] == 2048


def test_embed_truncates_by_default(embedder):
    words = [f"w{index}" for index in range(3000)]
    long_body = _embed(embedder, model="nomic-embed-text", input=" ".join(words))
    cut_body = _embed(embedder, model="nomic-embed-text", input=" ".join(words[:2048]))
    assert long_body.status_code == 200
    assert long_body.json()["prompt_eval_count"] == 2048
    assert long_body.json()["embeddings"] == cut_body.json()["embeddings"]


def test_embed_num_ctx_raises_context(embedder):
    text = " ".join(["word"] * 3000)
    response = _embed(
        embedder,
        model="nomic-embed-text",
        input=text,
        truncate=False,
        options={"num_ctx": 8192},
    )
    assert response.status_code == 200
    assert response.json()["prompt_eval_count"] == 3000


def test_embed_minilm_context_is_512(embedder):
    text = " ".join(["word"] * 513)
    response = _embed(embedder, model="all-minilm", input=text, truncate=False)
    assert response.status_code == 400


def test_embed_dimensions_truncates_and_normalises(embedder):
    full = _embed(embedder, model="nomic-embed-text", input="x").json()["embeddings"][0]
    short = _embed(
        embedder, model="nomic-embed-text", input="x", dimensions=256
    ).json()["embeddings"][0]
    assert len(short) == 256
    assert math.isclose(math.sqrt(sum(v * v for v in short)), 1.0, rel_tol=1e-9)
    scale = short[0] / full[0]
    assert all(
        math.isclose(s, f * scale, rel_tol=1e-9)
        for s, f in zip(short, full[:256], strict=True)
    )


def test_embed_dimensions_above_model_ignored(embedder):
    response = _embed(embedder, model="nomic-embed-text", input="x", dimensions=4096)
    assert len(response.json()["embeddings"][0]) == 768


def test_embed_invalid_keep_alive_is_400(embedder):
    response = _embed(embedder, model="nomic-embed-text", input="x", keep_alive="soon")
    assert response.status_code == 400
    assert response.json() == {"error": 'time: invalid duration "soon"'}


def test_embeddings_returns_one_vector(embedder):
    response = embedder.client.post(
        "/api/embeddings", json={"model": "nomic-embed-text", "prompt": "hello"}
    )
    assert response.status_code == 200
    vector = response.json()["embedding"]
    assert len(vector) == 768
    assert all(math.isfinite(value) for value in vector)


def test_embeddings_same_direction_as_embed(embedder):
    old = embedder.client.post(
        "/api/embeddings", json={"model": "nomic-embed-text", "prompt": "hello"}
    ).json()["embedding"]
    new = _embed(embedder, model="nomic-embed-text", input="hello").json()
    norm = math.sqrt(sum(value * value for value in old))
    normalised = [value / norm for value in old]
    assert all(
        math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        for a, b in zip(normalised, new["embeddings"][0], strict=True)
    )


def test_embeddings_with_input_returns_empty(embedder):
    response = embedder.client.post(
        "/api/embeddings", json={"model": "nomic-embed-text", "input": "hello"}
    )
    assert response.status_code == 200
    assert response.json() == {"embedding": []}


def test_embeddings_unknown_model_is_404(embedder):
    response = embedder.client.post(
        "/api/embeddings", json={"model": "ghost", "prompt": "hello"}
    )
    assert response.status_code == 404
    assert response.json() == {"error": 'model "ghost" not found, try pulling it first'}
