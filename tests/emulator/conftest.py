"""Fixtures that run the Ollama emulator as a real process on 127.0.0.1."""

import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from local_processes import REPOSITORY, start_emulator, stop_process

# The tests import the emulator's package, ollama_emulator, as well.
sys.path.insert(0, str(REPOSITORY / "lab" / "ollama-emulator" / "lib" / "ollama"))

# httpx timeouts in seconds; pulls finish in well under a second here.
HTTP_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=5.0, pool=5.0)


class Emulator:
    """A running emulator: its URL, process, folder and an httpx client."""

    def __init__(self, tmp_path: Path, env: dict | None = None) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.base_url, self.process = start_emulator(tmp_path, env)
        self.client = httpx.Client(base_url=self.base_url, timeout=HTTP_TIMEOUT)

    def pull(self, model: str) -> None:
        """Pull a model with stream false and fail the test if it does not succeed."""
        response = self.client.post("/api/pull", json={"model": model, "stream": False})
        assert response.status_code == 200, response.text

    def restart(self) -> None:
        """Stop the server and start a new one on the same models folder."""
        self.close()
        self.base_url, self.process = start_emulator(self.tmp_path, self.env)
        self.client = httpx.Client(base_url=self.base_url, timeout=HTTP_TIMEOUT)

    def close(self) -> None:
        """Close the client and stop the server process."""
        self.client.close()
        stop_process(self.process)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    """Return a fresh emulator with an empty models folder."""
    running = Emulator(tmp_path)
    yield running
    running.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    """Return a function that starts an emulator with extra environment variables."""
    with ExitStack() as stack:

        def start_with(env: dict | None = None, folder: Path | None = None) -> Emulator:
            running = Emulator(folder or tmp_path, env)
            stack.callback(running.close)
            return running

        yield start_with


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """Return one emulator per test module with every catalogue model pulled.

    Tests that use it must not delete models or change their state.
    """
    running = Emulator(tmp_path_factory.mktemp("embedder"))
    for model in ("nomic-embed-text", "all-minilm", "mxbai-embed-large"):
        running.pull(model)
    yield running
    running.close()
