"""Model store on disk, in Ollama's layout under OLLAMA_MODELS.

manifests/<host>/<namespace>/<model>/<tag> contains each manifest (JSON) and
blobs/sha256-<hex> contains each layer, so a restarted server finds the models
it pulled before.
"""

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .catalogue import ModelName, parse_model_name

LOG = logging.getLogger("ollama_emulator")


@dataclass(frozen=True)
class StoredModel:
    """A model found in the store, with the fields /api/tags reports."""

    name: ModelName
    digest: str
    size: int
    modified_at: float
    details: dict
    weights_digest: str


def write_atomically(path: Path, content: bytes) -> None:
    """Write a file through a temporary file and a rename, so readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class ModelStore:
    """Read and write manifests and blobs under one models folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifests_dir = root / "manifests"
        self.blobs_dir = root / "blobs"

    def manifest_path(self, name: ModelName) -> Path:
        """Return where the manifest of a model name lives."""
        return self.manifests_dir / name.host / name.namespace / name.model / name.tag

    def blob_path(self, digest: str) -> Path:
        """Return the file of a "sha256:<hex>" digest."""
        return self.blobs_dir / digest.replace(":", "-", 1)

    def partial_path(self, digest: str) -> Path:
        """Return the marker of an interrupted download of a blob."""
        return self.blobs_dir / (digest.replace(":", "-", 1) + "-partial")

    def find(self, name: ModelName) -> StoredModel | None:
        """Return the stored model of this name, or None if it is not pulled."""
        return self._read_manifest(name, self.manifest_path(name))

    def list_models(self) -> list[StoredModel]:
        """Return every stored model, most recently modified first."""
        models = []
        if self.manifests_dir.is_dir():
            for path in sorted(self.manifests_dir.glob("*/*/*/*")):
                if not path.is_file() or path.name.startswith(".tmp-"):
                    continue
                host, namespace, model, tag = path.relative_to(self.manifests_dir).parts
                name = parse_model_name(f"{host}/{namespace}/{model}:{tag}")
                if name is None:
                    LOG.warning("skipping manifest with an invalid name: %s", path)
                    continue
                stored = self._read_manifest(name, path)
                if stored is not None:
                    models.append(stored)

        models.sort(key=lambda stored: stored.modified_at, reverse=True)
        return models

    def write_manifest(self, name: ModelName, content: bytes) -> None:
        """Store a manifest; its mtime becomes the model's modified_at."""
        write_atomically(self.manifest_path(name), content)

    def delete(self, name: ModelName) -> bool:
        """Delete a model's manifest and the blobs no other manifest uses.

        Returns False when the model is not in the store.
        """
        path = self.manifest_path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            return False

        for directory in (path.parent, path.parent.parent, path.parent.parent.parent):
            try:
                directory.rmdir()
            except OSError:
                break

        self.prune_blobs()
        return True

    def prune_blobs(self) -> None:
        """Remove blob files that no manifest references."""
        if not self.blobs_dir.is_dir():
            return

        referenced = set()
        for stored_path in self.manifests_dir.glob("*/*/*/*"):
            try:
                manifest = json.loads(stored_path.read_bytes())
            except (OSError, ValueError):
                continue
            for entry in [manifest.get("config", {})] + manifest.get("layers", []):
                digest = entry.get("digest", "")
                referenced.add(digest.replace(":", "-", 1))

        for blob in self.blobs_dir.glob("sha256-*"):
            if blob.name.endswith("-partial"):
                continue
            if blob.name not in referenced:
                LOG.info("removing unused blob %s", blob.name)
                blob.unlink(missing_ok=True)

    def _read_manifest(self, name: ModelName, path: Path) -> StoredModel | None:
        try:
            content = path.read_bytes()
            modified_at = path.stat().st_mtime
        except FileNotFoundError:
            return None

        try:
            manifest = json.loads(content)
            layers = manifest["layers"]
            config_entry = manifest["config"]
            size = config_entry["size"] + sum(layer["size"] for layer in layers)
            config = json.loads(self.blob_path(config_entry["digest"]).read_bytes())
        except (OSError, ValueError, KeyError, TypeError) as error:
            LOG.warning("skipping unreadable manifest %s: %s", path, error)
            return None

        weights_digest = next(
            (
                layer["digest"]
                for layer in layers
                if layer.get("mediaType") == "application/vnd.ollama.image.model"
            ),
            "",
        )
        details = {
            "parent_model": "",
            "format": config.get("model_format", ""),
            "family": config.get("model_family", ""),
            "families": config.get("model_families"),
            "parameter_size": config.get("model_type", ""),
            "quantization_level": config.get("file_type", ""),
        }
        return StoredModel(
            name=name,
            digest=hashlib.sha256(content).hexdigest(),
            size=size,
            modified_at=modified_at,
            details=details,
            weights_digest=weights_digest,
        )
