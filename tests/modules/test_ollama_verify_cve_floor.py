"""Tests of ollama_verify's security floor against emulator releases of old versions.

Each release is packaged by lab/build-ollama-release exactly as the role installs
it, so /api/version reports the version baked into the archive.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from local_processes import pull_model
from module_support import OllamaServer, build_release, running_ollama_server

MODULE = "ollama_verify"
MODEL = "nomic-embed-text"
CVE = "CVE-2024-37032"


@contextmanager
def release_server(version: str, tmp_path: Path) -> Iterator[OllamaServer]:
    """Run the emulator release of `version`, a .tgz below 0.14.0."""
    binary = build_release(version, tmp_path / "release")
    with running_ollama_server(binary, tmp_path / "server") as server:
        yield server


@pytest.fixture(params=["0.1.30", "0.1.33"])
def old_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, OllamaServer]]:
    with release_server(request.param, tmp_path) as server:
        yield request.param, server


@pytest.fixture
def floor_server(tmp_path: Path) -> Iterator[OllamaServer]:
    with release_server("0.1.34", tmp_path) as server:
        yield server


def verify_args(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"endpoints": [{"name": name, "url": url}], "model": MODEL, **extra}


def test_old_release_fails_naming_cve(old_server: Any, module_runner: Any) -> None:
    version, server = old_server
    pull_model(server.url, MODEL)

    run = module_runner(MODULE, verify_args("gpu-old", server.url))

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

    run = module_runner(MODULE, verify_args("gpu-old", server.url, min_version="0.5.0"))

    assert run.failed
    assert f"version {version} is below the minimum 0.5.0" in run.result["msg"]
    assert CVE in run.result["msg"]


def test_floor_release_passes(floor_server: Any, module_runner: Any) -> None:
    pull_model(floor_server.url, MODEL)

    run = module_runner(MODULE, verify_args("gpu-floor", floor_server.url))

    assert not run.failed, run.result
    assert run.result["endpoints"][0]["version"] == "0.1.34"


def test_floor_release_below_higher_minimum_omits_cve(
    floor_server: Any, module_runner: Any
) -> None:
    run = module_runner(
        MODULE, verify_args("gpu-floor", floor_server.url, min_version="0.5.0")
    )

    assert run.failed
    assert "version 0.1.34 is below the minimum 0.5.0" in run.result["msg"]
    assert CVE not in run.result["msg"]


def test_minimum_below_floor_warns(old_server: Any, module_runner: Any) -> None:
    version, server = old_server
    pull_model(server.url, MODEL)

    run = module_runner(
        MODULE, verify_args("gpu-old", server.url, min_version="0.1.20")
    )

    assert run.result["endpoints"][0]["version"] == version
    assert any(CVE in warning for warning in run.warnings), run.result
