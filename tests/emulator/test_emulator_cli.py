"""The `ollama` command line and the OLLAMA_HOST forms it and `serve` accept."""

import math
import socket
import subprocess
import sys
import time

import httpx
import pytest
from local_processes import (
    EMULATOR_BINARY,
    emulator_environment,
    free_port,
    run_cli,
    stop_process,
)
from ollama_emulator.config import (
    keep_alive_from_environment,
    parse_go_duration,
    parse_ollama_host,
)


def _client_environment(emulator, host: str | None = None) -> dict[str, str]:
    port = emulator.base_url.rsplit(":", 1)[1]
    return emulator_environment(
        emulator.tmp_path, {"OLLAMA_HOST": host or f"127.0.0.1:{port}"}
    )


def test_version_flag_prints_server_version(emulator):
    result = run_cli(["--version"], _client_environment(emulator))
    assert result.returncode == 0
    assert result.stdout == "ollama version is 0.0.0-dev\n"


def test_short_version_flag(emulator):
    result = run_cli(["-v"], _client_environment(emulator))
    assert result.stdout == "ollama version is 0.0.0-dev\n"


def test_version_without_server_warns(tmp_path):
    environment = emulator_environment(
        tmp_path, {"OLLAMA_HOST": f"127.0.0.1:{free_port()}"}
    )
    result = run_cli(["--version"], environment)
    assert result.returncode == 0
    assert result.stdout == (
        "Warning: could not connect to a running Ollama instance\n"
        "Warning: client version is 0.0.0-dev\n"
    )


def test_client_treats_0000_as_loopback(emulator):
    port = emulator.base_url.rsplit(":", 1)[1]
    result = run_cli(["--version"], _client_environment(emulator, f"0.0.0.0:{port}"))
    assert result.stdout == "ollama version is 0.0.0-dev\n"


def test_cli_pull_then_list(emulator):
    environment = _client_environment(emulator)

    pull = run_cli(["pull", "nomic-embed-text"], environment)
    assert pull.returncode == 0
    assert "pulling manifest" in pull.stderr
    assert pull.stderr.rstrip().endswith("success")

    listing = run_cli(["list"], environment)
    assert listing.returncode == 0
    header, row = listing.stdout.splitlines()
    assert header.split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert row.split()[0] == "nomic-embed-text:latest"
    assert "274 MB" in row


def test_cli_pull_unknown_fails(emulator):
    result = run_cli(["pull", "no-such-model"], _client_environment(emulator))
    assert result.returncode == 1
    assert result.stderr.endswith("Error: pull model manifest: file does not exist\n")


def test_cli_rm_deletes_model(emulator):
    environment = _client_environment(emulator)
    run_cli(["pull", "all-minilm"], environment)

    result = run_cli(["rm", "all-minilm"], environment)
    assert result.returncode == 0
    assert result.stdout == "deleted 'all-minilm'\n"
    assert emulator.client.get("/api/tags").json() == {"models": []}


def test_cli_without_server_fails(tmp_path):
    environment = emulator_environment(
        tmp_path, {"OLLAMA_HOST": f"127.0.0.1:{free_port()}"}
    )
    result = run_cli(["list"], environment)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: could not connect to ollama server")


def test_cli_unknown_command_fails(tmp_path):
    result = run_cli(["frobnicate"], emulator_environment(tmp_path))
    assert result.returncode == 1
    assert result.stderr == 'Error: unknown command "frobnicate" for "ollama"\n'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ("http", "127.0.0.1", 11434)),
        ("0.0.0.0", ("http", "0.0.0.0", 11434)),
        ("0.0.0.0:8080", ("http", "0.0.0.0", 8080)),
        (":8080", ("http", "", 8080)),
        ("http://10.0.0.5:9000", ("http", "10.0.0.5", 9000)),
        ("http://10.0.0.5", ("http", "10.0.0.5", 80)),
        ("https://ollama.example", ("https", "ollama.example", 443)),
        ("[::]:11434", ("http", "::", 11434)),
        ("[::1]", ("http", "::1", 11434)),
        ("::1", ("http", "::1", 11434)),
        ("gpu-1.lan", ("http", "gpu-1.lan", 11434)),
        ("gpu-1.lan:99999", ("http", "gpu-1.lan", 11434)),
    ],
)
def test_ollama_host_forms(value, expected):
    parsed = parse_ollama_host(value)
    assert (parsed.scheme, parsed.host, parsed.port) == expected


@pytest.mark.parametrize(
    ("bind", "destination"),
    [
        ("0.0.0.0", "127.0.0.1"),
        ("::", "::1"),
        ("", "127.0.0.1"),
        ("10.1.1.1", "10.1.1.1"),
    ],
)
def test_connectable_host_uses_loopback(bind, destination):
    host = parse_ollama_host(f"[{bind}]:1" if ":" in bind else f"{bind}:1")
    assert host.connectable().host == destination


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300.0), ("1h30m", 5400.0), ("300ms", 0.3), ("0", 0.0), ("-1s", -1.0)],
)
def test_go_duration_values(text, seconds):
    assert math.isclose(parse_go_duration(text), seconds)


@pytest.mark.parametrize("text", ["300", "soon", "", "5 m"])
def test_go_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_go_duration(text)


def test_environment_keep_alive_seconds_and_forever():
    assert keep_alive_from_environment("600") == 600.0
    assert keep_alive_from_environment("-1") == math.inf
    assert keep_alive_from_environment("garbage") == 300.0


def test_serve_binds_ipv6_loopback(tmp_path):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
            port = probe.getsockname()[1]
    except OSError:
        pytest.skip("::1 is not configured on this machine")

    environment = emulator_environment(tmp_path, {"OLLAMA_HOST": f"[::1]:{port}"})
    process = subprocess.Popen(
        [sys.executable, str(EMULATOR_BINARY), "serve"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        text = _wait_for_text(f"http://[::1]:{port}/")
    finally:
        stop_process(process)
    assert text == "Ollama is running"


def _wait_for_text(url: str) -> str:
    deadline = time.monotonic() + 10
    while True:
        try:
            return httpx.get(url, timeout=1.0).text
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_serve_reports_port_in_use(tmp_path):
    with socket.socket() as occupied:
        occupied.bind(("127.0.0.1", 0))
        occupied.listen()
        port = occupied.getsockname()[1]
        environment = emulator_environment(
            tmp_path, {"OLLAMA_HOST": f"127.0.0.1:{port}"}
        )
        result = run_cli(["serve"], environment, timeout=10)

    assert result.returncode == 1
    assert f"Error: listen tcp 127.0.0.1:{port}:" in result.stderr
