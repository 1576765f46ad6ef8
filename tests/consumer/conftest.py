"""Fixtures for the reference consumer's tests: the app module, emulators, Tansu.

Emulators and the broker listen on 127.0.0.1 at free ports and are stopped by
their process id after the test or the session.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType

import pytest
from local_processes import (
    REPOSITORY,
    pull_model,
    running_tansu,
    start_emulator,
    stop_process,
)

APP = REPOSITORY / "lab" / "consumer" / "app.py"


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
    numbers = itertools.count()
    with ExitStack() as stack:

        def start(env: dict[str, str] | None = None) -> str:
            folder = tmp_path / f"ollama-{next(numbers)}"
            folder.mkdir()
            base_url, process = start_emulator(folder, env)
            stack.callback(stop_process, process)
            pull_model(base_url)
            return base_url

        yield start


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """Start a Tansu broker with in-memory storage and yield its bootstrap address."""
    with running_tansu() as bootstrap:
        yield bootstrap
