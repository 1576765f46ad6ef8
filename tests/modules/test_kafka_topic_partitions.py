"""Tests of kafka_topic_partitions and module_utils/kafka_admin.py against Tansu.

Tansu 0.6.0 supports CreateTopics but not CreatePartitions, so growing a topic
can only be tested for its error here.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from ansible.module_utils.kafka_admin import (
    BrokerUnreachableError,
    CreatePartitionsUnsupportedError,
    create_partitions,
    create_topic,
    describe_partition_count,
    open_admin,
)
from module_support import adhoc_result, free_port, run_ansible_adhoc

MODULE = "kafka_topic_partitions"


def new_topic_name() -> str:
    return f"test.{uuid.uuid4().hex[:12]}"


def partition_count(bootstrap: str, topic: str) -> int | None:
    return describe_partition_count(open_admin(bootstrap, 5), topic)


def make_topic(bootstrap: str, partitions: int) -> str:
    topic = new_topic_name()
    create_topic(open_admin(bootstrap, 5), topic, partitions, 1)
    return topic


def module_args(
    bootstrap: str, topic: str, partitions: int, **extra: Any
) -> dict[str, Any]:
    return {
        "bootstrap_servers": bootstrap,
        "topic": topic,
        "partitions": partitions,
        "timeout": 5,
        **extra,
    }


def test_missing_topic_created_with_partitions(
    tansu_broker: str, module_runner: Any
) -> None:
    topic = new_topic_name()

    run = module_runner(MODULE, module_args(tansu_broker, topic, 3))

    assert not run.failed, run.result
    assert run.result["changed"] is True
    assert run.result["created"] is True
    assert run.result["partitions_before"] is None
    assert run.result["partitions"] == 3
    assert partition_count(tansu_broker, topic) == 3


def test_second_run_unchanged(tansu_broker: str, module_runner: Any) -> None:
    topic = new_topic_name()
    module_runner(MODULE, module_args(tansu_broker, topic, 2))

    run = module_runner(MODULE, module_args(tansu_broker, topic, 2))

    assert not run.failed, run.result
    assert run.result["changed"] is False
    assert run.result["created"] is False
    assert run.result["partitions_before"] == 2
    assert run.result["partitions"] == 2


def test_more_partitions_than_requested_kept(
    tansu_broker: str, module_runner: Any
) -> None:
    topic = make_topic(tansu_broker, 4)

    run = module_runner(MODULE, module_args(tansu_broker, topic, 2))

    assert not run.failed, run.result
    assert run.result["changed"] is False
    assert run.result["partitions"] == 4
    assert any("cannot remove partitions" in text for text in run.warnings)
    assert partition_count(tansu_broker, topic) == 4


def test_raise_partitions_unsupported_error(
    tansu_broker: str, module_runner: Any
) -> None:
    topic = make_topic(tansu_broker, 2)

    run = module_runner(MODULE, module_args(tansu_broker, topic, 4))

    message = run.result["msg"]
    assert run.failed
    assert "does not support CreatePartitions" in message
    assert "API key 37" in message
    assert "KIP-195" in message
    assert "Apache Kafka 1.0.0 and later" in message
    assert "from 2 to 4 partitions" in message
    assert partition_count(tansu_broker, topic) == 2


def test_create_partitions_helper_raises_unsupported(tansu_broker: str) -> None:
    topic = make_topic(tansu_broker, 1)
    session = open_admin(tansu_broker, 5)

    with pytest.raises(CreatePartitionsUnsupportedError) as error:
        create_partitions(session, topic, 1, 2)

    assert "_UNSUPPORTED_FEATURE" in str(error.value) or "not supported" in str(
        error.value
    )


def test_check_mode_missing_topic_not_created(
    tansu_broker: str, module_runner: Any
) -> None:
    topic = new_topic_name()

    run = module_runner(
        MODULE,
        module_args(
            tansu_broker, topic, 3, _ansible_check_mode=True, _ansible_diff=True
        ),
    )

    assert not run.failed, run.result
    assert run.result["changed"] is True
    assert run.result["created"] is True
    assert run.result["partitions"] == 3
    assert run.result["diff"]["before"] == {"exists": False}
    assert run.result["diff"]["after"] == {"exists": True, "partitions": 3}
    assert partition_count(tansu_broker, topic) is None


def test_check_mode_raise_reports_unsupported(
    tansu_broker: str, module_runner: Any
) -> None:
    topic = make_topic(tansu_broker, 1)

    run = module_runner(
        MODULE, module_args(tansu_broker, topic, 2, _ansible_check_mode=True)
    )

    assert run.failed
    assert "does not support CreatePartitions" in run.result["msg"]
    assert partition_count(tansu_broker, topic) == 1


def test_diff_existing_topic(tansu_broker: str, module_runner: Any) -> None:
    topic = make_topic(tansu_broker, 2)

    run = module_runner(MODULE, module_args(tansu_broker, topic, 2, _ansible_diff=True))

    assert run.result["diff"]["before"] == {"exists": True, "partitions": 2}
    assert run.result["diff"]["after"] == {"exists": True, "partitions": 2}


def test_missing_topic_create_false_fails(
    tansu_broker: str, module_runner: Any
) -> None:
    topic = new_topic_name()

    run = module_runner(MODULE, module_args(tansu_broker, topic, 2, create=False))

    assert run.failed
    assert f"topic {topic} does not exist" in run.result["msg"]
    assert partition_count(tansu_broker, topic) is None


def test_unreachable_broker_fails_quickly(module_runner: Any) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    started = time.monotonic()

    run = module_runner(MODULE, module_args(bootstrap, "any", 1, timeout=2))

    elapsed = time.monotonic() - started
    assert run.failed
    assert f"Kafka broker {bootstrap} is unreachable" in run.result["msg"]
    assert "Connection refused" in run.result["msg"]
    assert elapsed < 6


def test_unreachable_helper_raises(module_runner: Any) -> None:
    session = open_admin(f"127.0.0.1:{free_port()}", 1)

    with pytest.raises(BrokerUnreachableError):
        describe_partition_count(session, "any")


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"partitions": 0}, "partitions must be 1 or more"),
        ({"replication_factor": 0}, "replication_factor must be 1 or more"),
        ({"timeout": 0}, "timeout must be more than 0"),
        ({"bootstrap_servers": " "}, "bootstrap_servers is empty"),
    ],
)
def test_invalid_options_fail(
    module_runner: Any, override: dict[str, Any], fragment: str
) -> None:
    args = module_args("127.0.0.1:9", "t", 1)
    args.update(override)

    run = module_runner(MODULE, args)

    assert run.failed
    assert fragment in run.result["msg"]


def test_tansu_ignores_validate_only_create(tansu_broker: str) -> None:
    """Tansu 0.6.0 creates a topic on a validate_only CreateTopics request.

    This is why check mode skips CreateTopics unless check_mode_validate_create is
    set. If this test fails, a newer Tansu honours validate_only.
    """
    topic = new_topic_name()

    create_topic(open_admin(tansu_broker, 5), topic, 2, 1, validate_only=True)

    assert partition_count(tansu_broker, topic) == 2


def test_adhoc_ansible_creates_topic(tansu_broker: str) -> None:
    topic = new_topic_name()

    completed = run_ansible_adhoc(MODULE, module_args(tansu_broker, topic, 2))

    result = adhoc_result(completed)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert result["changed"] is True
    assert result["partitions"] == 2
    assert partition_count(tansu_broker, topic) == 2


def test_adhoc_ansible_check_mode_unchanged_topic(tansu_broker: str) -> None:
    topic = make_topic(tansu_broker, 3)

    completed = run_ansible_adhoc(
        MODULE, module_args(tansu_broker, topic, 3), ["--check", "--diff"]
    )

    result = adhoc_result(completed)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert result["changed"] is False
    assert result["partitions_before"] == 3
