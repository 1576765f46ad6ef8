"""Models the emulator can pull, model names, and the manifests it writes."""

import hashlib
import json
import re
from dataclasses import dataclass

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
LICENSE_MEDIA_TYPE = "application/vnd.ollama.image.license"

# The server clamps a model's context to the default num_ctx of 2048 tokens
# unless the request sets options.num_ctx.
# NOTE: recent Ollama releases choose the default num_ctx from the GPU memory
# (4096 tokens and up), which raises this limit on those servers.
DEFAULT_NUM_CTX = 2048

_NAME_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_HOST_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(:[0-9]+)?")


@dataclass(frozen=True)
class ModelName:
    """A fully qualified model name: host/namespace/model:tag, in lower case."""

    host: str
    namespace: str
    model: str
    tag: str

    def display(self) -> str:
        """Return the shortest form Ollama shows, e.g. "nomic-embed-text:latest"."""
        if self.host == DEFAULT_HOST and self.namespace == DEFAULT_NAMESPACE:
            return f"{self.model}:{self.tag}"
        if self.host == DEFAULT_HOST:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"


def parse_model_name(text: str) -> ModelName | None:
    """Parse "[host/][namespace/]model[:tag]"; a bare name means the latest tag.

    Returns None for an invalid name. Every part must start with a letter or a
    digit, so no name can climb out of the manifests folder with "..".
    """
    path, _, tag = text.rpartition(":")
    if not path or "/" in tag:
        path, tag = text, DEFAULT_TAG

    parts = path.split("/")
    if len(parts) == 1:
        host, namespace, model = DEFAULT_HOST, DEFAULT_NAMESPACE, parts[0]
    elif len(parts) == 2:
        host, namespace, model = DEFAULT_HOST, parts[0], parts[1]
    elif len(parts) == 3:
        host, namespace, model = parts
    else:
        return None

    if not _HOST_PART.fullmatch(host):
        return None
    for part in (namespace, model, tag):
        if not _NAME_PART.fullmatch(part) or len(part) > 80:
            return None

    return ModelName(host.lower(), namespace.lower(), model.lower(), tag.lower())


@dataclass(frozen=True)
class CatalogueModel:
    """One embedding model of the registry, as the emulator describes it."""

    name: str
    tags: tuple[str, ...]
    family: str
    families: tuple[str, ...]
    parameter_size: str
    quantization_level: str
    dimensions: int
    trained_context: int
    weights_size: int
    license_text: str

    def weights_placeholder(self) -> bytes:
        """Return the bytes stored in place of the GGUF weights."""
        return f"ollama-emulator placeholder weights for {self.name}\n".encode()

    def weights_digest(self) -> str:
        """Return the digest of the weights layer; it seeds the model's vectors."""
        return "sha256:" + hashlib.sha256(self.weights_placeholder()).hexdigest()


# Sizes are the published GGUF sizes rounded to the byte count the emulator
# uses (nomic-embed-text 274 MB, all-minilm 46 MB, mxbai-embed-large 670 MB).
# Every tag of one model here names the same manifest, as the public registry
# does for nomic-embed-text latest, v1.5 and 137m-v1.5-fp16, so their digests
# are equal.
CATALOGUE: dict[str, CatalogueModel] = {
    model.name: model
    for model in (
        CatalogueModel(
            name="nomic-embed-text",
            tags=("latest", "v1.5", "137m-v1.5-fp16"),
            family="nomic-bert",
            families=("nomic-bert",),
            parameter_size="137M",
            quantization_level="F16",
            dimensions=768,
            trained_context=8192,
            weights_size=274290656,
            license_text="Apache License Version 2.0 (emulator placeholder)\n",
        ),
        CatalogueModel(
            name="all-minilm",
            tags=("latest", "l6-v2", "22m"),
            family="bert",
            families=("bert",),
            parameter_size="23M",
            quantization_level="F16",
            dimensions=384,
            trained_context=512,
            weights_size=45949216,
            license_text="Apache License Version 2.0 (emulator placeholder)\n",
        ),
        CatalogueModel(
            name="mxbai-embed-large",
            tags=("latest", "v1", "335m"),
            family="bert",
            families=("bert",),
            parameter_size="334M",
            quantization_level="F16",
            dimensions=1024,
            trained_context=512,
            weights_size=669603712,
            license_text="Apache License Version 2.0 (emulator placeholder)\n",
        ),
    )
}


def find_catalogue_model(name: ModelName) -> CatalogueModel | None:
    """Return the catalogue entry for a name, or None if the registry lacks it."""
    if name.host != DEFAULT_HOST or name.namespace != DEFAULT_NAMESPACE:
        return None

    model = CATALOGUE.get(name.model)
    if model is None or name.tag not in model.tags:
        return None
    return model


def find_model_by_weights(digest: str) -> CatalogueModel | None:
    """Return the catalogue entry whose weights layer has this digest."""
    for model in CATALOGUE.values():
        if model.weights_digest() == digest:
            return model
    return None


@dataclass(frozen=True)
class Blob:
    """One layer or config blob: its digest, declared size and stored bytes."""

    media_type: str
    digest: str
    size: int
    content: bytes


def _content_blob(media_type: str, content: bytes) -> Blob:
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    return Blob(media_type, digest, len(content), content)


def build_release(model: CatalogueModel) -> tuple[bytes, Blob, list[Blob]]:
    """Build the manifest bytes, config blob and layers of a catalogue model.

    The weights layer declares the published size although its stored file is a
    short placeholder. The output is deterministic, so a model's manifest
    digest is stable across pulls and restarts.
    """
    weights_content = model.weights_placeholder()
    weights = Blob(
        MODEL_MEDIA_TYPE, model.weights_digest(), model.weights_size, weights_content
    )
    license_blob = _content_blob(LICENSE_MEDIA_TYPE, model.license_text.encode())
    layers = [weights, license_blob]

    config = {
        "model_format": "gguf",
        "model_family": model.family,
        "model_families": list(model.families),
        "model_type": model.parameter_size,
        "file_type": model.quantization_level,
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {
            "type": "layers",
            "diff_ids": [layer.digest for layer in layers],
        },
    }
    config_blob = _content_blob(
        CONFIG_MEDIA_TYPE, json.dumps(config, separators=(",", ":")).encode()
    )

    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": config_blob.media_type,
            "digest": config_blob.digest,
            "size": config_blob.size,
        },
        "layers": [
            {"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}
            for layer in layers
        ],
    }
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    return manifest_bytes, config_blob, layers
