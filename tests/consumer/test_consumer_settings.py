"""Message format parsing and settings validation of the reference consumer."""

import json

import pytest

REQUIRED = {
    "OLLAMA_BASE_URL": "http://127.0.0.1:11434",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "KAFKA_TOPIC": "files",
    "KAFKA_CONSUMER_GROUP": "group",
}


def files_event(count: int) -> bytes:
    files = [{"path": f"src/f{n}.py", "content": f"print({n})"} for n in range(count)]
    return json.dumps({"batch_id": "b1", "files": files}).encode()


def test_files_event_gives_one_text_per_file(app):
    texts = app.event_texts(files_event(25))

    assert len(texts) == 25
    assert texts[0] == "print(0)"
    assert texts[24] == "print(24)"


def test_text_field_and_plain_value(app):
    assert app.event_texts(b'{"text": "hello"}') == ["hello"]
    assert app.event_texts(b"plain words") == ["plain words"]
    assert app.event_texts(b'["a list"]') == ['["a list"]']


@pytest.mark.parametrize(
    "value",
    [
        b"",
        None,
        b'{"files": []}',
        b'{"files": "src/a.py"}',
        b'{"files": [{"path": "a.py"}]}',
        b'{"files": [{"path": "a.py", "content": ""}]}',
    ],
)
def test_invalid_events_rejected(app, value):
    with pytest.raises(app.InvalidEventError):
        app.event_texts(value)


def test_settings_defaults(app):
    settings = app.Settings(REQUIRED)

    assert settings.concurrency == 1
    assert settings.batch_size == 25
    assert settings.truncate is True
    assert settings.read_timeout == 120
    assert settings.retry_attempts == 5


def test_pool_timeout_raised_to_read_timeout(app):
    settings = app.Settings(
        {**REQUIRED, "HTTP_POOL_TIMEOUT": "30", "HTTP_READ_TIMEOUT": "90"}
    )

    assert settings.pool_timeout == 90
    assert settings.pool_timeout_raised is True


def test_missing_settings_named(app):
    with pytest.raises(ValueError, match="KAFKA_TOPIC, KAFKA_CONSUMER_GROUP"):
        app.Settings({"OLLAMA_BASE_URL": "x", "KAFKA_BOOTSTRAP_SERVERS": "y"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONSUMER_CONCURRENCY", "0"),
        ("CONSUMER_CONCURRENCY", "two"),
        ("HTTP_READ_TIMEOUT", "-1"),
        ("RETRY_ATTEMPTS", "-1"),
        ("EMBED_TRUNCATE", "maybe"),
        ("KAFKA_AUTO_OFFSET_RESET", "newest"),
    ],
)
def test_invalid_setting_named_with_value(app, name, value):
    with pytest.raises(ValueError, match=f"{name}='{value}' is invalid"):
        app.Settings({**REQUIRED, name: value})


def test_kafka_config_uses_instance_id(app):
    settings = app.Settings(
        {**REQUIRED, "INSTANCE_ID": "consumer-2", "KAFKA_SESSION_TIMEOUT_MS": "6000"}
    )

    config = app.kafka_config(settings)

    assert config["client.id"] == "consumer-2"
    assert config["group.id"] == "group"
    assert config["session.timeout.ms"] == 6000
    assert config["enable.auto.offset.store"] is False


def test_percentile_nearest_rank(app):
    values = [float(n) for n in range(1, 101)]

    assert app.percentile(values, 0.50) == 50.0
    assert app.percentile(values, 0.95) == 95.0
    assert app.percentile([], 0.5) is None
    assert app.percentile([3.0], 0.95) == 3.0
