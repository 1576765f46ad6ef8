"""Tests of ollama_verify's security floor against emulator releases of old versions.

Each release is packaged by lab/build-ollama-release exactly as the role installs
it, so /api/version reports the version baked into the archive.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import BUILD_RELEASE, EMULATOR, start_emulator, stop_process

MODULE = "ollama_verify"
MODEL = "nomic-embed-text"
CVE = "CVE-2024-37032"


def build_release(version: str, out_dir: Path) -> Path:
    """Package the emulator at `version` (a .tgz below 0.14.0) and return bin/ollama."""
    if not EMULATOR.exists() or not BUILD_RELEASE.exists():
        pytest.skip(f"Ollama emulator or {BUILD_RELEASE.name} not found under lab/")

    subprocess.run(
        [
            sys.executable,
            str(BUILD_RELEASE),
            "--version",
            version,
            "--out",
            str(out_dir),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    install_dir = out_dir / "install"
    install_dir.mkdir()
    with tarfile.open(out_dir / "ollama-linux-amd64.tgz") as archive:
        archive.extractall(install_dir, filter="data")
    return install_dir / "bin" / "ollama"


@pytest.fixture(params=["0.1.30", "0.1.33"])
def old_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    binary = build_release(request.param, tmp_path / "release")
    work_dir = tmp_path / "server"
    work_dir.mkdir()
    server = start_emulator(binary, work_dir)
    try:
        yield request.param, server
    finally:
        stop_process(server.process)


@pytest.fixture
def floor_server(tmp_path: Path) -> Iterator[Any]:
    binary = build_release("0.1.34", tmp_path / "release")
    work_dir = tmp_path / "server"
    work_dir.mkdir()
    server = start_emulator(binary, work_dir)
    try:
        yield server
    finally:
        stop_process(server.process)


def pull(url: str) -> None:
    response = httpx.post(
        f"{url}/api/pull", json={"model": MODEL, "stream": False}, timeout=60
    )
    response.raise_for_status()


def test_old_release_fails_naming_cve(old_server: Any, module_runner: Any) -> None:
    version, server = old_server
    pull(server.url)

    run = module_runner(
        MODULE,
        {"endpoints": [{"name": "gpu-old", "url": server.url}], "model": MODEL},
    )

    message = run.result["msg"]
    assert run.failed
    assert run.result["endpoints"][0]["version"] == version
    assert "gpu-old" in message
    assert f"version {version} is below the minimum 0.1.34" in message
    assert CVE in message
    assert "upgrade Ollama" in message


def test_old_release_below_higher_minimum_names_cve(
    old_server: Any, module_runner: Any
) -> None:
    version, server = old_server

    run = module_runner(
        MODULE,
        {
            "endpoints": [{"name": "gpu-old", "url": server.url}],
            "model": MODEL,
            "min_version": "0.5.0",
        },
    )

    assert run.failed
    assert f"version {version} is below the minimum 0.5.0" in run.result["msg"]
    assert CVE in run.result["msg"]


def test_floor_release_passes(floor_server: Any, module_runner: Any) -> None:
    pull(floor_server.url)

    run = module_runner(
        MODULE,
        {"endpoints": [{"name": "gpu-floor", "url": floor_server.url}], "model": MODEL},
    )

    assert not run.failed, run.result
    assert run.result["endpoints"][0]["version"] == "0.1.34"


def test_floor_release_below_higher_minimum_omits_cve(
    floor_server: Any, module_runner: Any
) -> None:
    run = module_runner(
        MODULE,
        {
            "endpoints": [{"name": "gpu-floor", "url": floor_server.url}],
            "model": MODEL,
            "min_version": "0.5.0",
        },
    )

    assert run.failed
    assert "version 0.1.34 is below the minimum 0.5.0" in run.result["msg"]
    assert CVE not in run.result["msg"]


def test_minimum_below_floor_warns(old_server: Any, module_runner: Any) -> None:
    version, server = old_server
    pull(server.url)

    run = module_runner(
        MODULE,
        {
            "endpoints": [{"name": "gpu-old", "url": server.url}],
            "model": MODEL,
            "min_version": "0.1.20",
        },
    )

    assert run.result["endpoints"][0]["version"] == version
    assert any(CVE in warning for warning in run.warnings), run.result
