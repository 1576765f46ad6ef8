"""Loaded models, keep-alive expiry, and the request queue of the embedding runners."""

import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

LOG = logging.getLogger("ollama_emulator")

# Ollama's error text, with its two spaces.
SERVER_BUSY_MESSAGE = (
    "server busy, please try again.  maximum pending requests exceeded"
)


class ServerBusyError(RuntimeError):
    """More requests are waiting than OLLAMA_MAX_QUEUE allows."""


@dataclass
class LoadedModel:
    """A model that /api/ps lists; expires_at is an epoch time or math.inf."""

    display_name: str
    digest: str
    size: int
    details: dict
    context_length: int
    expires_at: float
    active_requests: int = 0


class Scheduler:
    """Serve at most `concurrency` requests per model and queue the rest.

    The queue is shared by all models and contains at most `max_queue` waiting
    requests. A request past that limit is rejected with ServerBusyError, which
    the server turns into status 503.
    """

    def __init__(self, concurrency: int, max_queue: int) -> None:
        self._concurrency = concurrency
        self._max_queue = max_queue
        self._condition = threading.Condition()
        self._active: dict[str, int] = {}
        self._waiting = 0
        self._loaded: dict[str, LoadedModel] = {}

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        """Hold one of the model's service slots, waiting in the queue if needed."""
        with self._condition:
            if self._active.get(key, 0) >= self._concurrency:
                if self._waiting >= self._max_queue:
                    raise ServerBusyError(SERVER_BUSY_MESSAGE)
                self._waiting += 1
                try:
                    while self._active.get(key, 0) >= self._concurrency:
                        self._condition.wait()
                finally:
                    self._waiting -= 1
            self._active[key] = self._active.get(key, 0) + 1

        try:
            yield
        finally:
            with self._condition:
                self._active[key] -= 1
                self._condition.notify_all()

    def begin_use(self, key: str, model: LoadedModel, keep_alive: float) -> bool:
        """Mark a model as loaded and in use; return True if it had to be loaded."""
        with self._condition:
            self._expire_locked()
            loaded = self._loaded.get(key)
            newly_loaded = loaded is None
            if newly_loaded:
                loaded = model
                self._loaded[key] = loaded
                LOG.info("loaded model %s", model.display_name)
            loaded.active_requests += 1
            loaded.expires_at = _expiry(keep_alive)
            return newly_loaded

    def end_use(self, key: str, keep_alive: float) -> None:
        """Restart the model's keep-alive timer; keep_alive 0 unloads it now."""
        with self._condition:
            loaded = self._loaded.get(key)
            if loaded is None:
                return
            loaded.active_requests -= 1
            loaded.expires_at = _expiry(keep_alive)
            self._expire_locked()

    def loaded_models(self) -> list[LoadedModel]:
        """Return the loaded models, the one with the longest time left first."""
        with self._condition:
            self._expire_locked()
            models = list(self._loaded.values())
        models.sort(key=lambda model: model.expires_at, reverse=True)
        return models

    def _expire_locked(self) -> None:
        now = time.time()
        for key, loaded in list(self._loaded.items()):
            if loaded.active_requests == 0 and loaded.expires_at <= now:
                del self._loaded[key]
                LOG.info("unloaded model %s (keep_alive expired)", loaded.display_name)


def _expiry(keep_alive: float) -> float:
    if math.isinf(keep_alive):
        return math.inf
    return time.time() + keep_alive
