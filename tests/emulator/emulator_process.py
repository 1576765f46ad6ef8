"""Start and stop the Ollama emulator (lab/ollama-emulator/bin/ollama) for tests.

Other test suites may import start_emulator and stop_emulator to get a real
HTTP server on 127.0.0.1 with its own models folder.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPOSITORY = Path(__file__).resolve().parents[2]
EMULATOR_BINARY = REPOSITORY / "lab" / "ollama-emulator" / "bin" / "ollama"
BUILD_SCRIPT = REPOSITORY / "lab" / "build-ollama-release"

# Seconds to wait for `ollama serve` to respond to GET / after it starts.
STARTUP_TIMEOUT_SECONDS = 10.0
# Bind attempts with a new free port when another process took the chosen one.
START_ATTEMPTS = 3


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def emulator_environment(tmp_path: Path, env: dict | None = None) -> dict[str, str]:
    """Build a clean environment: no inherited OLLAMA_* and a HOME inside tmp_path.

    Values in `env` override the defaults; a value of None removes the variable.
    """
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("OLLAMA_")
    }
    environment["HOME"] = str(tmp_path / "home")
    environment["OLLAMA_MODELS"] = str(tmp_path / "models")
    for key, value in (env or {}).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = str(value)
    return environment


def log_path(tmp_path: Path, base_url: str) -> Path:
    """Return the file that contains the stderr of the emulator serving base_url."""
    port = base_url.rsplit(":", 1)[1]
    return tmp_path / f"emulator-{port}.log"


def start_emulator(
    tmp_path: Path, env: dict | None = None
) -> tuple[str, subprocess.Popen]:
    """Start `ollama serve` on 127.0.0.1 with a free port and wait until it responds.

    OLLAMA_MODELS defaults to tmp_path/models, so a second start with the same
    tmp_path sees the models of the first. Returns (base_url, process); stop it
    with stop_emulator. Raises RuntimeError with the server log if it never
    responds.
    """
    (tmp_path / "home").mkdir(parents=True, exist_ok=True)
    last_log = ""
    for _ in range(START_ATTEMPTS):
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        environment = emulator_environment(tmp_path, env)
        environment.setdefault("OLLAMA_HOST", f"127.0.0.1:{port}")

        log_file = log_path(tmp_path, base_url)
        with log_file.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, str(EMULATOR_BINARY), "serve"],
                env=environment,
                stdout=stderr,
                stderr=stderr,
            )

        if _wait_until_ready(base_url, process):
            return base_url, process

        stop_emulator(process)
        last_log = log_file.read_text(errors="replace")

    raise RuntimeError(f"the emulator did not start; its log:\n{last_log}")


def _wait_until_ready(base_url: str, process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(base_url + "/", timeout=1.0).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return False


def stop_emulator(process: subprocess.Popen) -> None:
    """Stop an emulator started by start_emulator: SIGTERM, then SIGKILL after 5 s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def run_cli(
    arguments: list[str], environment: dict[str, str], timeout: float = 30.0
) -> subprocess.CompletedProcess:
    """Run the emulator's `ollama` command line and capture its output."""
    return subprocess.run(
        [sys.executable, str(EMULATOR_BINARY), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
