"""Tests of the shared helpers in module_utils/kafka_admin.py.

The error-mapping tests build real confluent-kafka errors. The last test sends a
request that fails to the Tansu broker on loopback.
"""

from __future__ import annotations

import uuid

import pytest
from ansible.module_utils.kafka_admin import (
    AdminSession,
    AuthenticationFailedError,
    BrokerUnreachableError,
    KafkaAdminError,
    _request_error,
    _topic_change_options,
    create_topic,
    open_admin,
    open_admin_from_params,
)
from confluent_kafka import KafkaError, KafkaException
from module_support import free_port

BOOTSTRAP = "127.0.0.1:9"


class PollOnlyClient:
    """An AdminClient stand-in for the session methods that only call poll()."""

    def poll(self, timeout: float) -> int:
        return 0


def offline_session() -> AdminSession:
    return AdminSession(PollOnlyClient(), BOOTSTRAP, 2.0)


def test_latest_errors_empty_without_errors() -> None:
    session = offline_session()

    assert session.last_connection_error() == ""
    assert session.authentication_failure() == ""


def test_latest_errors_return_last_recorded() -> None:
    session = offline_session()
    session.record_error(KafkaError(KafkaError._TRANSPORT, "connection refused"))
    session.record_error(KafkaError(KafkaError._AUTHENTICATION, "SASL login failed"))
    session.record_error(KafkaError(KafkaError._TRANSPORT, "connection reset"))

    assert session.last_connection_error() == "connection reset"
    assert session.authentication_failure() == "SASL login failed"


def test_open_admin_from_params_settings() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    params = {
        "bootstrap_servers": bootstrap,
        "timeout": 3.0,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_username": "fleet-admin",
        "sasl_password": "secret",
        "client_config": {"client.id": "unit-test"},
    }

    session = open_admin_from_params(params)

    assert session.client is not None
    assert session.bootstrap_servers == bootstrap
    assert session.timeout == 3.0
    assert session.client_config == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": "fleet-admin",
        "sasl.password": "secret",
        "client.id": "unit-test",
    }


def test_request_error_transport_is_unreachable() -> None:
    exception = KafkaException(KafkaError(KafkaError._TRANSPORT, "refused"))

    error = _request_error(offline_session(), exception, "describing topic t")

    assert isinstance(error, BrokerUnreachableError)
    assert f"Kafka broker {BOOTSTRAP} is unreachable" in str(error)
    assert "is unreachable: refused. The request gave up after" in str(error)


def test_request_error_authentication_named() -> None:
    exception = KafkaException(KafkaError(KafkaError._AUTHENTICATION, "bad login"))

    error = _request_error(offline_session(), exception, "describing topic t")

    assert isinstance(error, AuthenticationFailedError)
    assert "rejected the client's credentials (bad login)" in str(error)


@pytest.mark.parametrize(
    "exception",
    [
        KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS)),
        KafkaException("not a KafkaError"),
    ],
)
def test_request_error_other_names_request(exception: KafkaException) -> None:
    error = _request_error(offline_session(), exception, "creating topic t on b")

    assert type(error) is KafkaAdminError
    assert str(error) == f"creating topic t on b failed: {exception}"


@pytest.mark.parametrize("validate_only", [True, False])
def test_topic_change_options_use_session_timeout(validate_only: bool) -> None:
    options = _topic_change_options(offline_session(), validate_only)

    assert options == {
        "operation_timeout": 2.0,
        "request_timeout": 2.0,
        "validate_only": validate_only,
    }


def test_create_existing_topic_names_request(tansu_broker: str) -> None:
    topic = f"test.{uuid.uuid4().hex[:12]}"
    create_topic(open_admin(tansu_broker, 5), topic, 1, 1)

    with pytest.raises(KafkaAdminError) as raised:
        create_topic(open_admin(tansu_broker, 5), topic, 1, 1)

    assert type(raised.value) is KafkaAdminError
    assert str(raised.value).startswith(
        f"creating topic {topic} with 1 partitions and replication factor 1 on "
        f"{tansu_broker} failed: "
    )
