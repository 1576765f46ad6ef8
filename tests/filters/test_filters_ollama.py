"""Tests of the filters behind the GPU facts and the ollama role's drop-in settings."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from ansible.errors import AnsibleFilterError

REPO = Path(__file__).resolve().parents[2]


def load(path: Path) -> ModuleType:
    """Import a filter plugin file, as Ansible does, without a package."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


fleet = load(REPO / "filter_plugins" / "fleet.py")
settings = load(REPO / "roles" / "ollama" / "filter_plugins" / "ollama_settings.py")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {"rc": 0, "stdout_lines": ["NVIDIA A100-SXM4-80GB, 81920 MiB"]},
            "NVIDIA A100-SXM4-80GB (81920 MiB)",
        ),
        (
            {
                "rc": 0,
                "stdout_lines": [
                    "NVIDIA L4, 23034 MiB",
                    "NVIDIA L4, 23034 MiB",
                    "Tesla T4, 15360 MiB",
                ],
            },
            "2x NVIDIA L4 (23034 MiB), Tesla T4 (15360 MiB)",
        ),
        ({"rc": 2, "stdout_lines": []}, "CPU"),
        ({"rc": 9, "stdout_lines": ["NVIDIA-SMI has failed"]}, "CPU"),
        ({"rc": 0, "stdout_lines": ["", "  "]}, "CPU"),
        ({}, "CPU"),
    ],
)
def test_gpu_summary(query: dict, expected: str) -> None:
    assert fleet.fleet_gpu_summary(query) == expected


@pytest.mark.parametrize(
    ("value", "address", "port", "local_url"),
    [
        ("", "0.0.0.0", 11434, "http://127.0.0.1:11434"),
        ("0.0.0.0", "0.0.0.0", 11434, "http://127.0.0.1:11434"),
        ("10.0.0.5:11434", "10.0.0.5", 11434, "http://10.0.0.5:11434"),
        (":11434", "0.0.0.0", 11434, "http://127.0.0.1:11434"),
        ("http://10.0.0.5:11434", "10.0.0.5", 11434, "http://10.0.0.5:11434"),
        ("http://10.0.0.5:11434/", "10.0.0.5", 11434, "http://10.0.0.5:11434"),
        ("[::]:11434", "::", 11434, "http://[::1]:11434"),
        ("[fd00::5]", "fd00::5", 11434, "http://[fd00::5]:11434"),
        ("::", "::", 11434, "http://[::1]:11434"),
        ("127.0.0.1", "127.0.0.1", 11434, "http://127.0.0.1:11434"),
    ],
)
def test_listen_forms_normalised(
    value: str, address: str, port: int, local_url: str
) -> None:
    listen = settings.ollama_listen(value, "0.0.0.0", 11434)

    assert listen["address"] == address
    assert listen["port"] == port
    assert listen["local_url"] == local_url


def test_listen_value_brackets_ipv6() -> None:
    assert settings.ollama_listen("[::]:8080", "", 8080)["value"] == "[::]:8080"


def test_listen_port_follows_ollama_port() -> None:
    listen = settings.ollama_listen("10.0.0.5", "0.0.0.0", 11500)

    assert listen["value"] == "10.0.0.5:11500"
    assert listen["local_url"] == "http://10.0.0.5:11500"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("\u201c0.0.0.0\u201d", "spaces or quotes"),
        ("0.0.0.0 ", "spaces or quotes"),
        ("'0.0.0.0'", "spaces or quotes"),
        ("https://10.0.0.5:11434", "scheme"),
        ("http://10.0.0.5:11434/api", "path"),
        ("gpu-1.example:11434", "not an IPv4 or IPv6 address"),
        ("10.0.0.5:", "port after the colon is missing"),
        ("10.0.0.5:99999", "not a number from 1 to 65535"),
        ("[::1", "no closing"),
        ("10.0.0.5:8080", "ollama_port: 8080"),
    ],
)
def test_listen_rejects_invalid(value: str, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        settings.ollama_listen(value, "0.0.0.0", 11434, "gpu-1")

    assert message in str(error.value)
    assert "gpu-1" in str(error.value)


def test_environment_errors_listed() -> None:
    errors = settings.ollama_environment_errors(
        {
            "OLLAMA_FLASH_ATTENTION": "1",
            "OLLAMA_ORIGINS": "http://a.example,http://b.example",
            "1BAD": "x",
            "QUOTED": "\u201cvalue\u201d",
            "PADDED": " x",
            "NESTED": {"a": 1},
        }
    )

    assert len(errors) == 4
    assert any("1BAD" in error for error in errors)
    assert any("QUOTED" in error for error in errors)
    assert any("PADDED" in error for error in errors)
    assert any("NESTED" in error for error in errors)


def test_systemd_escape_doubles_percent() -> None:
    assert settings.ollama_systemd_escape("50%") == "50%%"


def test_digest_mismatch_names_hosts() -> None:
    hostvars = {
        "gpu-1": {"ollama_model_digests": {"nomic-embed-text:latest": "sha256:aa"}},
        "gpu-2": {"ollama_model_digests": {"nomic-embed-text:latest": "sha256:aa"}},
        "gpu-3": {"ollama_model_digests": {"nomic-embed-text:latest": "sha256:bb"}},
    }

    mismatches = fleet.fleet_model_digest_mismatches(list(hostvars), hostvars)

    assert mismatches == [
        "nomic-embed-text:latest: sha256:aa on gpu-1, gpu-2; sha256:bb on gpu-3"
    ]


def test_digest_match_and_gaps_ignored() -> None:
    hostvars = {
        "gpu-1": {"ollama_model_digests": {"all-minilm:latest": "sha256:cc"}},
        "gpu-2": {"ollama_model_digests": {"all-minilm:latest": None}},
        "gpu-3": {},
    }

    assert fleet.fleet_model_digest_mismatches(list(hostvars), hostvars) == []
