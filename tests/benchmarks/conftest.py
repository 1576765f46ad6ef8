"""Fixtures for the benchmark tests, shared with the consumer tests."""

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "consumer" / "conftest.py"
_SPEC = importlib.util.spec_from_file_location("consumer_fixtures", _PATH)
_FIXTURES = importlib.util.module_from_spec(_SPEC)
sys.modules["consumer_fixtures"] = _FIXTURES
_SPEC.loader.exec_module(_FIXTURES)

# The emulator and broker fixtures of tests/consumer, by the same names.
ollama = _FIXTURES.ollama
kafka = _FIXTURES.kafka
