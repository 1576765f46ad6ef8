"""Ollama server emulator for the ollama-fleet lab and tests.

The emulator is a stdlib-only Python 3.11 stand-in for the `ollama` binary. It is
packaged like a real Linux release (bin/ollama plus lib/ollama/), so the Ansible
role can install it with the same steps as the real archive.

It serves the parts of the Ollama REST API that the project uses: /,
/api/version, /api/tags, /api/ps, /api/pull, /api/embed, /api/embeddings and
/api/delete. Status codes, error texts and JSON fields follow Ollama's
server/routes.go. It reads the same settings as Ollama: OLLAMA_HOST,
OLLAMA_MODELS, OLLAMA_KEEP_ALIVE, OLLAMA_NUM_PARALLEL and OLLAMA_MAX_QUEUE.

What it does not do: it runs no model. Pulls download nothing, and the blob
files under OLLAMA_MODELS are small placeholders while the manifests declare
the published layer sizes. Vectors are hashes of the model weights' digest and
the input text, so they are deterministic but carry no meaning.

Lab-only settings (absent from real Ollama, all read by `ollama serve`):

OLLAMA_EMULATOR_EMBED_SECONDS
    Fixed service time of one /api/embed or /api/embeddings request, in
    seconds (default 0).
OLLAMA_EMULATOR_EMBED_ITEM_SECONDS
    Service time per input text, in seconds (default 0), added to the fixed
    time: a batch of 25 texts holds the runner 25 times as long as one text.
    Together the two settings let a lab host stand in for a slower or faster
    machine (a CPU host, one GPU or another).
OLLAMA_EMULATOR_EMBED_CONCURRENCY
    Requests served at once per model (default 1). Ollama serves BERT-family
    embedding models one request at a time, whatever OLLAMA_NUM_PARALLEL is set
    to. Further requests wait in a queue bounded by OLLAMA_MAX_QUEUE.
OLLAMA_EMULATOR_PULL_SECONDS
    Time one pull spends downloading a model that is not yet present, in
    seconds (default 0.2).
OLLAMA_EMULATOR_PULL_FAILURES
    Number of pulls that fail halfway through the weights layer with
    "max retries exceeded: unexpected EOF" (default 0). The next pull resumes
    from the partial download, as Ollama does.

The version is baked into the VERSION file next to this module by
lab/build-ollama-release; the source tree says 0.0.0-dev.
"""

from pathlib import Path

_VERSION_FILE = Path(__file__).with_name("VERSION")
_DEVELOPMENT_VERSION = "0.0.0-dev"


def read_version() -> str:
    """Return the version baked into the release, or 0.0.0-dev in a source tree."""
    try:
        text = _VERSION_FILE.read_text(encoding="utf-8").strip()
    except OSError:
        return _DEVELOPMENT_VERSION

    return text or _DEVELOPMENT_VERSION
