"""kafka_topic_partitions over the Kafka wire protocol against the test broker.

Tansu 0.6.0 lacks CreatePartitions, so the increase path runs against
tests/kafka_test_broker, which implements it and counts every request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kafka_test_broker import Broker
from local_processes import running_test_broker
from module_support import adhoc_result, run_ansible_adhoc

MODULE = "kafka_topic_partitions"
TOPIC = "requests.v1"
SASL_USER = "fleet-admin"
SASL_PASSWORD = "pa$$word'\""


@pytest.fixture
def broker() -> Iterator[Broker]:
    with running_test_broker() as test_broker:
        yield test_broker


@pytest.fixture
def sasl_broker() -> Iterator[Broker]:
    with running_test_broker(sasl_users={SASL_USER: SASL_PASSWORD}) as test_broker:
        yield test_broker


def module_args(broker: Broker, partitions: int, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap_servers": broker.bootstrap_servers,
        "topic": TOPIC,
        "partitions": partitions,
        "timeout": 5,
        **extra,
    }


def sasl_args(broker: Broker, partitions: int, password: str) -> dict[str, Any]:
    """Return module_args that log in as SASL_USER over SASL/PLAIN with `password`."""
    return module_args(
        broker,
        partitions,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username=SASL_USER,
        sasl_password=password,
    )


@pytest.mark.parametrize(
    ("current", "consumers", "expected", "requests", "changed"),
    [
        (6, 4, 6, 0, False),
        (6, 8, 8, 1, True),
        (3, 3, 3, 0, False),
    ],
    ids=["6-partitions-4-consumers", "6-partitions-8-consumers", "3-and-3"],
)
def test_partitions_for_consumer_count(
    broker: Broker,
    module_runner: Any,
    current: int,
    consumers: int,
    expected: int,
    requests: int,
    changed: bool,
) -> None:
    broker.add_topic(TOPIC, current)

    run = module_runner(MODULE, module_args(broker, consumers))

    assert not run.failed, run.result
    assert run.result["changed"] is changed
    assert run.result["partitions_before"] == current
    assert run.result["partitions"] == expected
    assert broker.topics[TOPIC] == expected
    assert broker.requests["CreatePartitions"] == requests
    assert broker.requests["CreateTopics"] == 0


def test_increase_warns_about_key_placement(broker: Broker, module_runner: Any) -> None:
    broker.add_topic(TOPIC, 6)

    run = module_runner(MODULE, module_args(broker, 8))

    assert any("from 6 to 8 partitions" in text for text in run.warnings)
    assert any("different partition" in text for text in run.warnings)


def test_request_below_current_warns(broker: Broker, module_runner: Any) -> None:
    broker.add_topic(TOPIC, 6)

    run = module_runner(MODULE, module_args(broker, 4))

    assert run.result["partitions"] == 6
    assert any("cannot remove partitions" in text for text in run.warnings)
    assert broker.requests["CreatePartitions"] == 0


def test_missing_topic_created_with_n(broker: Broker, module_runner: Any) -> None:
    run = module_runner(MODULE, module_args(broker, 5))

    assert not run.failed, run.result
    assert run.result["created"] is True
    assert run.result["changed"] is True
    assert broker.topics[TOPIC] == 5
    assert broker.requests["CreateTopics"] == 1
    assert broker.requests["CreatePartitions"] == 0


def test_missing_topic_create_false_fails(broker: Broker, module_runner: Any) -> None:
    run = module_runner(MODULE, module_args(broker, 5, create=False))

    assert run.failed
    assert f"topic {TOPIC} does not exist" in run.result["msg"]
    assert "set create to true" in run.result["msg"]
    assert TOPIC not in broker.topics
    assert broker.requests["CreateTopics"] == 0


def test_check_mode_sends_validate_only(broker: Broker, module_runner: Any) -> None:
    broker.add_topic(TOPIC, 2)

    run = module_runner(
        MODULE,
        module_args(broker, 4, _ansible_check_mode=True, _ansible_diff=True),
    )

    assert not run.failed, run.result
    assert run.result["changed"] is True
    assert run.result["diff"]["before"] == {"exists": True, "partitions": 2}
    assert run.result["diff"]["after"] == {"exists": True, "partitions": 4}
    assert broker.validate_only_requests["CreatePartitions"] == 1
    assert broker.topics[TOPIC] == 2


def test_second_run_after_increase_unchanged(
    broker: Broker, module_runner: Any
) -> None:
    broker.add_topic(TOPIC, 2)
    module_runner(MODULE, module_args(broker, 3))

    run = module_runner(MODULE, module_args(broker, 3))

    assert run.result["changed"] is False
    assert broker.requests["CreatePartitions"] == 1


def test_broker_without_create_partitions_named(module_runner: Any) -> None:
    with running_test_broker(create_partitions=False) as test_broker:
        test_broker.add_topic(TOPIC, 2)
        run = module_runner(MODULE, module_args(test_broker, 3))

    assert run.failed
    assert "does not support CreatePartitions" in run.result["msg"]
    assert "Apache Kafka 1.0.0 and later" in run.result["msg"]
    assert test_broker.requests["CreatePartitions"] == 0


def test_sasl_plain_login_raises_partitions(
    sasl_broker: Broker, module_runner: Any
) -> None:
    sasl_broker.add_topic(TOPIC, 1)

    run = module_runner(MODULE, sasl_args(sasl_broker, 2, SASL_PASSWORD))

    assert not run.failed, run.result
    assert sasl_broker.topics[TOPIC] == 2


def test_sasl_wrong_password_fails_clearly(
    sasl_broker: Broker, module_runner: Any
) -> None:
    run = module_runner(MODULE, sasl_args(sasl_broker, 2, "wrong-secret-value"))

    assert run.failed
    assert "rejected the client's credentials" in run.result["msg"]
    assert "sasl_password" in run.result["msg"]
    assert "wrong-secret-value" not in str(run.result)
    assert TOPIC not in sasl_broker.topics


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"security_protocol": "SASL_SSL"}, "needs sasl_mechanism"),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"},
            "needs sasl_username and sasl_password",
        ),
        ({"sasl_mechanism": "PLAIN"}, "security_protocol is PLAINTEXT"),
        ({"ssl_cafile": "/tmp/ca.pem"}, "set security_protocol to SSL"),
    ],
)
def test_invalid_security_options_fail(
    broker: Broker, module_runner: Any, override: dict[str, Any], fragment: str
) -> None:
    run = module_runner(MODULE, module_args(broker, 1, **override))

    assert run.failed
    assert fragment in run.result["msg"]
    assert broker.requests.total() == 0


def test_adhoc_password_kept_out_of_output(sasl_broker: Broker) -> None:
    sasl_broker.add_topic(TOPIC, 1)

    completed = run_ansible_adhoc(MODULE, sasl_args(sasl_broker, 1, SASL_PASSWORD))

    result = adhoc_result(completed)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert result["changed"] is False
    assert result["invocation"]["module_args"]["sasl_password"] != SASL_PASSWORD
    assert "pa$$word" not in completed.stdout
    assert "pa$$word" not in completed.stderr
