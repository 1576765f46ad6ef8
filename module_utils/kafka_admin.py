# Copyright: contributors to ollama-fleet
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kafka topic administration through confluent-kafka's AdminClient.

The functions raise KafkaAdminError subclasses with messages that name the broker,
the topic and the next step, so a module can pass them to fail_json unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

try:
    from confluent_kafka import KafkaError, KafkaException, TopicCollection
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

    HAS_CONFLUENT_KAFKA = True
    CONFLUENT_KAFKA_IMPORT_ERROR: str | None = None
except ImportError as import_error:
    HAS_CONFLUENT_KAFKA = False
    CONFLUENT_KAFKA_IMPORT_ERROR = str(import_error)

# CreatePartitions is Kafka protocol API key 37, added by KIP-195 in Apache Kafka
# 1.0.0. librdkafka checks the broker's ApiVersions response and rejects the
# request locally with _UNSUPPORTED_FEATURE when the key is missing. A broker that
# receives a version it does not know returns UNSUPPORTED_VERSION instead.
CREATE_PARTITIONS_API_KEY = 37
CREATE_PARTITIONS_MIN_KAFKA_VERSION = "1.0.0"


class KafkaAdminError(Exception):
    """Base class of the errors raised by this module."""


class BrokerUnreachableError(KafkaAdminError):
    """No broker responded within the timeout."""


class TopicNotFoundError(KafkaAdminError):
    """The topic does not exist."""


class CreatePartitionsUnsupportedError(KafkaAdminError):
    """The broker does not implement CreatePartitions (API key 37)."""


@dataclass
class AdminSession:
    """An AdminClient with the settings and the connection errors it reported."""

    client: Any
    bootstrap_servers: str
    timeout: float
    connection_errors: list[str] = field(default_factory=list)

    def last_connection_error(self) -> str:
        """Return the last error that librdkafka reported, after serving callbacks."""
        self.client.poll(0)
        if not self.connection_errors:
            return ""

        return self.connection_errors[-1]


def _discard_logger() -> logging.Logger:
    """Return a logger that drops librdkafka's log lines.

    Without a logger librdkafka prints every failed connection attempt to stderr,
    about 20 lines a second, which would end up in the module's output. The last
    error still reaches the caller through error_cb.
    """
    logger = logging.getLogger("ollama_fleet.kafka_admin.librdkafka")
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())

    return logger


def open_admin(
    bootstrap_servers: str,
    timeout: float,
    client_config: dict[str, Any] | None = None,
) -> AdminSession:
    """Create an AdminClient whose connection attempts give up after `timeout` s.

    `client_config` adds librdkafka settings such as security.protocol; its values
    override the ones set here.
    """
    timeout_ms = max(1, int(timeout * 1000))
    session = AdminSession(None, bootstrap_servers, timeout)
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        "socket.connection.setup.timeout.ms": timeout_ms,
        "socket.timeout.ms": max(10, timeout_ms),
        "error_cb": lambda error: session.connection_errors.append(error.str()),
        "logger": _discard_logger(),
    }
    config.update(client_config or {})
    session.client = AdminClient(config)
    return session


def _kafka_error(exception: BaseException) -> Any | None:
    """Return the KafkaError inside a KafkaException, if there is one."""
    if isinstance(exception, KafkaException) and exception.args:
        error = exception.args[0]
        if isinstance(error, KafkaError):
            return error

    return None


def _is_unreachable(error: Any) -> bool:
    """Return whether a KafkaError means that no broker could be reached."""
    return error.code() in (
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
    )


def _unreachable_error(session: AdminSession, error: Any) -> BrokerUnreachableError:
    """Build the error for a broker that did not respond."""
    cause = session.last_connection_error() or error.str()
    return BrokerUnreachableError(
        f"Kafka broker {session.bootstrap_servers} is unreachable: no response within "
        f"{session.timeout} s ({cause}). Check kafka_bootstrap_servers and that the "
        "broker is running and reachable from this host."
    )


def check_reachable(session: AdminSession) -> None:
    """Raise BrokerUnreachableError unless a broker responds to a metadata request."""
    try:
        session.client.list_topics(timeout=session.timeout)
    except KafkaException as exception:
        error = _kafka_error(exception)
        if error is not None and _is_unreachable(error):
            raise _unreachable_error(session, error) from exception
        raise KafkaAdminError(
            f"metadata request to {session.bootstrap_servers} failed: {exception}"
        ) from exception


def describe_partition_count(session: AdminSession, topic: str) -> int | None:
    """Return the topic's number of partitions, or None when it does not exist.

    Uses DescribeTopics rather than a metadata request for the topic, because a
    metadata request can create the topic on brokers that auto-create topics.
    """
    futures = session.client.describe_topics(
        TopicCollection([topic]), request_timeout=session.timeout
    )
    try:
        description = futures[topic].result()
    except KafkaException as exception:
        error = _kafka_error(exception)
        if error is not None and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return None
        if error is not None and _is_unreachable(error):
            raise _unreachable_error(session, error) from exception
        raise KafkaAdminError(
            f"describing topic {topic} on {session.bootstrap_servers} failed: "
            f"{exception}"
        ) from exception

    return len(description.partitions)


def create_topic(
    session: AdminSession,
    topic: str,
    partitions: int,
    replication_factor: int,
    validate_only: bool = False,
) -> None:
    """Create the topic; with validate_only the broker only checks the request.

    NOTE: Tansu 0.6.0 ignores validate_only on CreateTopics and creates the topic.
    """
    futures = session.client.create_topics(
        [
            NewTopic(
                topic, num_partitions=partitions, replication_factor=replication_factor
            )
        ],
        operation_timeout=session.timeout,
        request_timeout=session.timeout,
        validate_only=validate_only,
    )
    try:
        futures[topic].result()
    except KafkaException as exception:
        error = _kafka_error(exception)
        if error is not None and _is_unreachable(error):
            raise _unreachable_error(session, error) from exception
        raise KafkaAdminError(
            f"creating topic {topic} with {partitions} partitions and replication "
            f"factor {replication_factor} on {session.bootstrap_servers} failed: "
            f"{exception}"
        ) from exception


def is_create_partitions_unsupported(error: Any) -> bool:
    """Return whether a KafkaError means that the broker lacks CreatePartitions."""
    return error.code() in (
        KafkaError._UNSUPPORTED_FEATURE,
        KafkaError.UNSUPPORTED_VERSION,
    )


def create_partitions_unsupported_message(
    bootstrap_servers: str, topic: str, current: int, requested: int, cause: str
) -> str:
    """Return the message for a broker that lacks CreatePartitions."""
    return (
        f"Kafka broker {bootstrap_servers} does not support CreatePartitions "
        f"(Kafka API key {CREATE_PARTITIONS_API_KEY}, KIP-195), so topic {topic} "
        f"cannot grow from {current} to {requested} partitions. Apache Kafka "
        f"{CREATE_PARTITIONS_MIN_KAFKA_VERSION} and later support it. Upgrade the "
        f"broker, or delete and recreate the topic with {requested} partitions "
        f"(which discards its messages). Client error: {cause}"
    )


def create_partitions(
    session: AdminSession,
    topic: str,
    current: int,
    total: int,
    validate_only: bool = False,
) -> None:
    """Raise the topic's partition count to `total`.

    Raises CreatePartitionsUnsupportedError when the broker does not implement
    CreatePartitions.
    """
    futures = session.client.create_partitions(
        [NewPartitions(topic, total)],
        operation_timeout=session.timeout,
        request_timeout=session.timeout,
        validate_only=validate_only,
    )
    try:
        futures[topic].result()
    except KafkaException as exception:
        error = _kafka_error(exception)
        if error is not None and is_create_partitions_unsupported(error):
            raise CreatePartitionsUnsupportedError(
                create_partitions_unsupported_message(
                    session.bootstrap_servers, topic, current, total, error.str()
                )
            ) from exception
        if error is not None and _is_unreachable(error):
            raise _unreachable_error(session, error) from exception
        raise KafkaAdminError(
            f"raising topic {topic} from {current} to {total} partitions on "
            f"{session.bootstrap_servers} failed: {exception}"
        ) from exception
