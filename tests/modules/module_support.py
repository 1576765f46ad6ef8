"""Fixtures and helpers for the module tests: import paths, runners, Tansu, Ollama.

The brokers and servers listen on 127.0.0.1 at free ports and are stopped by their
process id when the test session or test ends.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock

import ansible.module_utils
import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.common import warnings as common_warnings
from ansible.module_utils.testing import patch_module_args
from local_processes import (
    BUILD_SCRIPT,
    EMULATOR_BINARY,
    VENV_BIN,
    build_emulator_release,
    free_port,
    running_tansu,
    start_emulator,
    stop_process,
)

REPO = Path(__file__).resolve().parents[2]
MODULE_UTILS_DIR = REPO / "module_utils"
LIBRARY_DIR = REPO / "library"

# Version baked into the emulator release that the tests run. The source tree
# reports 0.0.0-dev, which is below every sensible min_version.
EMULATOR_VERSION = "0.32.14"

# Make `from ansible.module_utils.ollama_api import ...` find the repository's
# module_utils, as ansible.cfg's module_utils setting does for real runs.
if str(MODULE_UTILS_DIR) not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(MODULE_UTILS_DIR))

if str(LIBRARY_DIR) not in sys.path:
    sys.path.insert(0, str(LIBRARY_DIR))


@dataclass
class ModuleRun:
    """The outcome of one in-process module run."""

    result: dict[str, Any]
    failed: bool

    @property
    def warnings(self) -> list[str]:
        """Return the warning texts, which ansible-core 2.19 sends as objects."""
        texts: list[str] = []
        for warning in self.result.get("warnings", []):
            if isinstance(warning, dict):
                texts.append(warning["event"]["msg"])
            else:
                texts.append(str(warning))
        return texts


def run_module(name: str, args: dict[str, Any], capsys: Any) -> ModuleRun:
    """Run library/<name>.py's main() in this process and return its JSON result.

    `args` may contain _ansible_check_mode and _ansible_diff like a real run.
    """
    module = importlib.import_module(name)
    capsys.readouterr()
    # Record module.warn() in the result as on a managed host. Under pytest the
    # controller code is imported, so warn() would print through Display instead.
    with (
        patch_module_args(args),
        mock.patch.object(module_utils_internal, "is_controller", False),
        mock.patch.dict(common_warnings._global_warnings, clear=True),
        pytest.raises(SystemExit) as exit_info,
    ):
        module.main()

    output = capsys.readouterr().out
    result = json.loads(output)
    return ModuleRun(result=result, failed=exit_info.value.code != 0)


@pytest.fixture
def module_runner(capsys: Any) -> Any:
    """Return a function that runs a module by name with arguments."""

    def runner(name: str, args: dict[str, Any]) -> ModuleRun:
        return run_module(name, args, capsys)

    return runner


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[str]:
    """Start a Tansu broker with in-memory storage and yield its bootstrap address."""
    with running_tansu() as bootstrap:
        yield bootstrap


@dataclass
class OllamaServer:
    """A running Ollama emulator."""

    url: str
    models_dir: Path
    process: subprocess.Popen[bytes]


def build_release(version: str, out_dir: Path) -> Path:
    """Build and unpack the emulator release of `version` and return its bin/ollama.

    Skips the test when lab/ lacks the emulator or the build script.
    """
    if not EMULATOR_BINARY.exists() or not BUILD_SCRIPT.exists():
        pytest.skip(f"Ollama emulator or {BUILD_SCRIPT.name} not found under lab/")

    return build_emulator_release(version, out_dir)


@pytest.fixture(scope="session")
def ollama_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build and unpack an emulator release archive and return its bin/ollama.

    The tests run the emulator as the role installs it: from the release archive
    that lab/build-ollama-release writes, with EMULATOR_VERSION baked in.
    """
    return build_release(EMULATOR_VERSION, tmp_path_factory.mktemp("ollama-release"))


@contextmanager
def running_ollama_server(
    binary: Path, work_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[OllamaServer]:
    """Run the emulator at `binary` on a free port with its folders in work_dir."""
    url, process = start_emulator(
        work_dir, extra_env, command=[sys.executable, str(binary)]
    )
    try:
        yield OllamaServer(url, work_dir / "models", process)
    finally:
        stop_process(process)


@pytest.fixture
def ollama_server(ollama_binary: Path, tmp_path: Path) -> Iterator[OllamaServer]:
    """Start an emulator with an empty model folder for one test."""
    with running_ollama_server(ollama_binary, tmp_path) as server:
        yield server


@pytest.fixture
def ollama_factory(ollama_binary: Path, tmp_path: Path) -> Iterator[Any]:
    """Return a function that starts emulators with extra environment settings."""
    with ExitStack() as stack:

        def factory(name: str, extra_env: dict[str, str] | None = None) -> OllamaServer:
            directory = tmp_path / name
            directory.mkdir()
            return stack.enter_context(
                running_ollama_server(ollama_binary, directory, extra_env)
            )

        yield factory


def closed_port_url() -> str:
    """Return an http URL on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


def run_ansible_adhoc(
    module: str, args: dict[str, Any], extra_args: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one module through the `ansible` ad hoc command against localhost.

    The module's arguments are passed as JSON, and its result is printed by the
    json stdout callback.
    """
    env = dict(os.environ)
    env.update(
        ANSIBLE_LIBRARY=str(LIBRARY_DIR),
        ANSIBLE_MODULE_UTILS=str(MODULE_UTILS_DIR),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="true",
        ANSIBLE_HOST_KEY_CHECKING="false",
        ANSIBLE_RETRY_FILES_ENABLED="false",
        ANSIBLE_NOCOLOR="1",
    )
    command = [
        str(VENV_BIN / "ansible"),
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={VENV_BIN / 'python'}",
        "-m",
        module,
        "-a",
        json.dumps(args),
        *(extra_args or []),
    ]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, cwd=REPO
    )


def adhoc_result(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """Return the localhost task result from the json callback's output."""
    try:
        report = json.loads(completed.stdout)
    except ValueError as error:
        raise AssertionError(
            f"ansible printed no JSON; stdout={completed.stdout!r} "
            f"stderr={completed.stderr!r}"
        ) from error

    return report["plays"][0]["tasks"][0]["hosts"]["localhost"]


@dataclass
class StubRoute:
    """A canned response of the stub server."""

    status: int
    body: Any
    delay: float = 0.0


class StubOllamaServer:
    """An HTTP server on 127.0.0.1 that returns canned Ollama responses.

    It covers server behaviour that the emulator does not produce on request, such
    as an empty embedding vector, an old version or a 503 with an error body.
    """

    def __init__(self, routes: dict[tuple[str, str], StubRoute]) -> None:
        self.routes = routes
        self.requests: list[tuple[str, str]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class name
                return

            def _respond(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                stub.requests.append((self.command, self.path))
                route = stub.routes.get((self.command, self.path))
                if route is None:
                    route = StubRoute(404, {"error": "not found"})
                time.sleep(route.delay)
                if isinstance(route.body, str):
                    payload = route.body.encode()
                    content_type = "text/plain; charset=utf-8"
                else:
                    payload = json.dumps(route.body).encode()
                    content_type = "application/json; charset=utf-8"
                self.send_response(route.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _respond
            do_POST = _respond
            do_DELETE = _respond

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def healthy_routes(
    version: str = "0.32.14",
    model: str = "nomic-embed-text:latest",
    vector: list[float] | None = None,
) -> dict[tuple[str, str], StubRoute]:
    """Return stub routes of a healthy server with one model."""
    return {
        ("GET", "/"): StubRoute(200, "Ollama is running"),
        ("GET", "/api/version"): StubRoute(200, {"version": version}),
        ("GET", "/api/tags"): StubRoute(
            200,
            {
                "models": [
                    {"name": model, "model": model, "digest": "d" * 64, "size": 1}
                ]
            },
        ),
        ("POST", "/api/embed"): StubRoute(
            200,
            {
                "model": model,
                "embeddings": [vector if vector is not None else [0.1] * 768],
            },
        ),
    }


@pytest.fixture
def stub_factory() -> Iterator[Any]:
    """Return a function that starts stub servers, all stopped after the test."""
    with ExitStack() as stack:

        def factory(routes: dict[tuple[str, str], StubRoute]) -> StubOllamaServer:
            server = StubOllamaServer(routes)
            stack.callback(server.close)
            return server

        yield factory
