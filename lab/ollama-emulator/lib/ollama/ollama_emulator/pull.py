"""The /api/pull progress stream: manifest, layers, verification, manifest write."""

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .catalogue import Blob, ModelName, build_release, find_catalogue_model
from .store import ModelStore, write_atomically

LOG = logging.getLogger("ollama_emulator")

MANIFEST_NOT_FOUND = "pull model manifest: file does not exist"
INJECTED_FAILURE = "max retries exceeded: unexpected EOF"

# Progress lines sent while one large layer downloads.
_PROGRESS_STEPS = 4


class PullError(RuntimeError):
    """A pull failed; the message is the text Ollama sends as "error"."""


class PullFailureBudget:
    """Count down OLLAMA_EMULATOR_PULL_FAILURES across requests."""

    def __init__(self, failures: int) -> None:
        self._remaining = failures
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Return True if this pull should fail, using up one failure."""
        with self._lock:
            if self._remaining <= 0:
                return False
            self._remaining -= 1
            return True


class Puller:
    """Pull catalogue models into a store, one pull per model at a time."""

    def __init__(
        self, store: ModelStore, pull_seconds: float, failures: PullFailureBudget
    ) -> None:
        self._store = store
        self._pull_seconds = pull_seconds
        self._failures = failures
        self._locks: dict[ModelName, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def pull(self, name: ModelName) -> Iterator[dict]:
        """Yield Ollama's progress objects for a pull; raise PullError on failure."""
        yield {"status": "pulling manifest"}

        model = find_catalogue_model(name)
        if model is None:
            raise PullError(MANIFEST_NOT_FOUND)

        with self._lock_for(name):
            manifest, config, layers = build_release(model)
            blobs = layers + [config]
            download_size = sum(
                blob.size
                for blob in blobs
                if not self._store.blob_path(blob.digest).is_file()
            )
            for blob in blobs:
                yield from self._download(blob, download_size)

            yield {"status": "verifying sha256 digest"}
            for blob in blobs:
                self._verify(blob)

            yield {"status": "writing manifest"}
            self._store.write_manifest(name, manifest)

        LOG.info("pulled model %s", name.display())
        yield {"status": "success"}

    def _lock_for(self, name: ModelName) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    def _download(self, blob: Blob, download_size: int) -> Iterator[dict]:
        status = {
            "status": f"pulling {blob.digest[7:19]}",
            "digest": blob.digest,
            "total": blob.size,
        }
        path = self._store.blob_path(blob.digest)
        if path.is_file():
            yield status | {"completed": blob.size}
            return

        partial = self._store.partial_path(blob.digest)
        completed = _read_partial(partial)
        layer_seconds = self._pull_seconds * blob.size / max(download_size, 1)
        steps = _PROGRESS_STEPS if blob.size > 1_000_000 else 1
        fail_at = steps // 2 if steps > 1 and self._failures.take() else None

        for step in range(steps):
            time.sleep(layer_seconds / steps)
            completed = max(completed, blob.size * (step + 1) // steps)

            if step == fail_at:
                write_atomically(partial, json.dumps({"completed": completed}).encode())
                LOG.warning(
                    "pull of %s failed after %d of %d bytes (injected by "
                    "OLLAMA_EMULATOR_PULL_FAILURES)",
                    blob.digest,
                    completed,
                    blob.size,
                )
                raise PullError(INJECTED_FAILURE)

            # Ollama leaves "completed" out while it is zero.
            yield (status | {"completed": completed}) if completed else status

        write_atomically(path, blob.content)
        partial.unlink(missing_ok=True)

    def _verify(self, blob: Blob) -> None:
        path = self._store.blob_path(blob.digest)
        actual = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != blob.digest:
            path.unlink(missing_ok=True)
            raise PullError(
                "digest mismatch, file must be downloaded again: "
                f"want {blob.digest}, got {actual}"
            )


def _read_partial(path: Path) -> int:
    try:
        return int(json.loads(path.read_bytes())["completed"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0
