"""fleet_deployed_consumer_counts: consumers per endpoint read back from a .env."""

from __future__ import annotations

import importlib.util
from pathlib import Path

FILTER_FILE = Path(__file__).resolve().parents[2] / "filter_plugins" / "fleet.py"
spec = importlib.util.spec_from_file_location("fleet_filters", FILTER_FILE)
fleet = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fleet)

ENDPOINTS = [
    {"name": "gpu-1", "url": "http://192.0.2.11:11434"},
    {"name": "gpu-2", "url": "http://192.0.2.12:11434"},
    {"name": "gpu-3", "url": "http://192.0.2.13:11434"},
]


def env_line(number: int, url: str) -> str:
    return f"OLLAMA_BASE_URL_CONSUMER_{number}={fleet.fleet_dotenv_quote(url)}"


def test_counts_consumers_per_endpoint():
    env_text = "\n".join(
        [
            "# written by the consumers role",
            env_line(1, "http://192.0.2.11:11434"),
            env_line(2, "http://192.0.2.12:11434"),
            env_line(3, "http://192.0.2.12:11434"),
            'KAFKA_TOPIC="files"',
        ]
    )

    counts = fleet.fleet_deployed_consumer_counts(env_text, ENDPOINTS)

    assert counts == {"gpu-1": 1, "gpu-2": 2}


def test_quoted_url_read_back():
    endpoints = [{"name": "odd", "url": 'http://odd.example:11434/a"b$c\\d'}]
    env_text = env_line(1, endpoints[0]["url"])

    assert fleet.fleet_deployed_consumer_counts(env_text, endpoints) == {"odd": 1}


def test_trailing_slash_and_unquoted_value_match():
    env_text = "OLLAMA_BASE_URL_CONSUMER_1=http://192.0.2.13:11434/\n"

    assert fleet.fleet_deployed_consumer_counts(env_text, ENDPOINTS) == {"gpu-3": 1}


def test_unknown_url_and_empty_file_ignored():
    env_text = env_line(1, "http://198.51.100.7:11434")

    assert fleet.fleet_deployed_consumer_counts(env_text, ENDPOINTS) == {}
    assert fleet.fleet_deployed_consumer_counts("", ENDPOINTS) == {}
    assert fleet.fleet_deployed_consumer_counts(None, ENDPOINTS) == {}
