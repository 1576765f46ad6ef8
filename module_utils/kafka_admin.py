# Copyright: contributors to ollama-fleet
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kafka topic administration through confluent-kafka's AdminClient.

The functions raise KafkaAdminError subclasses with messages that name the broker,
the topic and the next step, so a module can pass them to fail_json unchanged.
"""

from __future__ import annotations

import logging
import re
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


class AuthenticationFailedError(KafkaAdminError):
    """The broker rejected the client's SASL or SSL credentials."""


class CreatePartitionsUnsupportedError(KafkaAdminError):
    """The broker does not implement CreatePartitions (API key 37)."""


@dataclass
class AdminSession:
    """An AdminClient with the settings and the connection errors it reported."""

    client: Any
    bootstrap_servers: str
    timeout: float
    client_config: dict[str, Any] = field(default_factory=dict)
    connection_errors: list[str] = field(default_factory=list)
    authentication_errors: list[str] = field(default_factory=list)

    def record_error(self, error: Any) -> None:
        """Store an error that librdkafka reported through error_cb."""
        self.connection_errors.append(error.str())
        if error.code() == KafkaError._AUTHENTICATION:
            self.authentication_errors.append(error.str())

    def last_connection_error(self) -> str:
        """Return the last error that librdkafka reported, after serving callbacks."""
        return self._latest_after_poll(self.connection_errors)

    def authentication_failure(self) -> str:
        """Return the last authentication error, after serving callbacks, or ""."""
        return self._latest_after_poll(self.authentication_errors)

    def _latest_after_poll(self, errors: list[str]) -> str:
        """Serve pending error_cb callbacks, then return the last entry of `errors`."""
        self.client.poll(0)
        if not errors:
            return ""

        return errors[-1]


# Connection options shared by the Kafka modules, as AnsibleModule argument specs.
# The values map to librdkafka settings in connection_config().
CONNECTION_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "bootstrap_servers": {"type": "str", "required": True},
    "timeout": {"type": "float", "default": 10},
    "security_protocol": {
        "type": "str",
        "default": "PLAINTEXT",
        "choices": ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
    },
    "sasl_mechanism": {
        "type": "str",
        "choices": ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"],
    },
    "sasl_username": {"type": "str"},
    "sasl_password": {"type": "str", "no_log": True},
    "ssl_cafile": {"type": "path"},
    "ssl_certfile": {"type": "path"},
    "ssl_keyfile": {"type": "path"},
    "ssl_keyfile_password": {"type": "str", "no_log": True},
    "ssl_check_hostname": {"type": "bool", "default": True},
    "client_config": {"type": "dict", "default": {}, "no_log": True},
}

# Module option to librdkafka setting, for the options passed through unchanged.
_LIBRDKAFKA_SETTINGS = {
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanisms",
    "sasl_username": "sasl.username",
    "sasl_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_keyfile_password": "ssl.key.password",
}


def validate_connection_params(params: dict[str, Any]) -> None:
    """Raise ValueError naming the first invalid connection option and its fix."""
    if not params["bootstrap_servers"].strip():
        raise ValueError("bootstrap_servers is empty; set it to host:port[,host:port]")

    if params["timeout"] <= 0:
        raise ValueError(
            f"timeout must be more than 0 seconds, got {params['timeout']}"
        )

    protocol = params["security_protocol"]
    uses_sasl = protocol.startswith("SASL_")
    if uses_sasl and not params.get("sasl_mechanism"):
        raise ValueError(
            f"security_protocol {protocol} needs sasl_mechanism; set it to PLAIN, "
            "SCRAM-SHA-256 or SCRAM-SHA-512"
        )

    if uses_sasl and not (params.get("sasl_username") and params.get("sasl_password")):
        raise ValueError(
            f"security_protocol {protocol} needs sasl_username and sasl_password"
        )

    if not uses_sasl and params.get("sasl_mechanism"):
        raise ValueError(
            f"sasl_mechanism is set but security_protocol is {protocol}; set "
            "security_protocol to SASL_PLAINTEXT or SASL_SSL"
        )

    uses_ssl = protocol in ("SSL", "SASL_SSL")
    for option in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        if params.get(option) and not uses_ssl:
            raise ValueError(
                f"{option} is set but security_protocol is {protocol}; set "
                "security_protocol to SSL or SASL_SSL"
            )


def connection_config(params: dict[str, Any]) -> dict[str, Any]:
    """Return the librdkafka settings for the connection options in `params`.

    client_config is applied last, so its values override the others.
    """
    config: dict[str, Any] = {}
    for option, setting in _LIBRDKAFKA_SETTINGS.items():
        if params.get(option):
            config[setting] = params[option]

    if params["security_protocol"] in ("SSL", "SASL_SSL") and not params.get(
        "ssl_check_hostname", True
    ):
        config["ssl.endpoint.identification.algorithm"] = "none"

    config.update(params.get("client_config") or {})
    return config


def open_admin_from_params(params: dict[str, Any]) -> AdminSession:
    """Create an AdminClient from a module's CONNECTION_ARGUMENT_SPEC options."""
    return open_admin(
        params["bootstrap_servers"], params["timeout"], connection_config(params)
    )


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
    session = AdminSession(None, bootstrap_servers, timeout, dict(client_config or {}))
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        "socket.connection.setup.timeout.ms": timeout_ms,
        "socket.timeout.ms": max(10, timeout_ms),
        "error_cb": session.record_error,
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
        KafkaError._AUTHENTICATION,
    )


def _unreachable_error(session: AdminSession, error: Any) -> KafkaAdminError:
    """Build the error for a broker that did not respond or rejected the login."""
    authentication = session.authentication_failure()
    if not authentication and error.code() == KafkaError._AUTHENTICATION:
        authentication = error.str()
    if authentication:
        return AuthenticationFailedError(
            f"Kafka broker {session.bootstrap_servers} rejected the client's "
            f"credentials ({authentication}). Check security_protocol, "
            "sasl_mechanism, sasl_username and sasl_password (or the SSL "
            "certificate settings) against the broker's listener."
        )

    cause = session.last_connection_error() or error.str()
    return BrokerUnreachableError(
        f"Kafka broker {session.bootstrap_servers} is unreachable: {cause}. The "
        f"request gave up after {session.timeout} s. Check kafka_bootstrap_servers "
        "and that the broker is running and reachable from this host."
    )


def _request_error(
    session: AdminSession, exception: BaseException, request: str
) -> KafkaAdminError:
    """Build the error for a failed admin request.

    A broker that did not respond or rejected the login gets the message of
    _unreachable_error. Any other failure reads "<request> failed: <exception>".
    """
    error = _kafka_error(exception)
    if error is not None and _is_unreachable(error):
        return _unreachable_error(session, error)

    return KafkaAdminError(f"{request} failed: {exception}")


def check_reachable(session: AdminSession) -> None:
    """Raise BrokerUnreachableError unless a broker responds to a metadata request."""
    try:
        session.client.list_topics(timeout=session.timeout)
    except KafkaException as exception:
        raise _request_error(
            session, exception, f"metadata request to {session.bootstrap_servers}"
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
        raise _request_error(
            session,
            exception,
            f"describing topic {topic} on {session.bootstrap_servers}",
        ) from exception

    return len(description.partitions)


def _topic_change_options(session: AdminSession, validate_only: bool) -> dict[str, Any]:
    """Return the keyword arguments of AdminClient.create_topics and create_partitions.

    The broker waits up to session.timeout for the change to reach the cluster
    (operation_timeout), and the client waits as long for the whole request.
    """
    return {
        "operation_timeout": session.timeout,
        "request_timeout": session.timeout,
        "validate_only": validate_only,
    }


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
        **_topic_change_options(session, validate_only),
    )
    try:
        futures[topic].result()
    except KafkaException as exception:
        raise _request_error(
            session,
            exception,
            f"creating topic {topic} with {partitions} partitions and replication "
            f"factor {replication_factor} on {session.bootstrap_servers}",
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
        [NewPartitions(topic, total)], **_topic_change_options(session, validate_only)
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
        raise _request_error(
            session,
            exception,
            f"raising topic {topic} from {current} to {total} partitions on "
            f"{session.bootstrap_servers}",
        ) from exception


# Kafka names a classic group member "<client.id>-<UUID>" (and Tansu 0.6.0 does
# the same), so the client id can be read back from a member id.
_MEMBER_ID_SUFFIX = re.compile(
    r"-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)

# librdkafka settings that make the client skip ApiVersions and assume a 0.9.0
# broker, so describe_consumer_groups sends the classic DescribeGroups (key 15)
# instead of ConsumerGroupDescribe (key 69). librdkafka 2.x marks both settings
# deprecated, and librdkafka 3.x removes them.
_CLASSIC_DESCRIBE_SETTINGS = {
    "api.version.request": False,
    "broker.version.fallback": "0.9.0",
}


def _client_id_of(member: Any) -> str:
    """Return a member's client id, read from its member id when the broker left
    the client id empty."""
    if member.client_id:
        return member.client_id

    return _MEMBER_ID_SUFFIX.sub("", member.member_id)


def _member_entries(description: Any) -> list[dict[str, Any]]:
    """Return the members of a ConsumerGroupDescription as plain dicts."""
    members = []
    for member in description.members:
        assignment = member.assignment.topic_partitions if member.assignment else []
        members.append(
            {
                "client_id": _client_id_of(member),
                "member_id": member.member_id,
                "host": member.host,
                "partitions": sorted(
                    f"{item.topic}[{item.partition}]" for item in assignment
                ),
            }
        )

    return sorted(members, key=lambda member: member["client_id"])


def _describe_group(session: AdminSession, client: Any, group: str) -> Any:
    """Return the ConsumerGroupDescription of `group` that `client` reads."""
    futures = client.describe_consumer_groups([group], request_timeout=session.timeout)
    try:
        return futures[group].result()
    except KafkaException as exception:
        raise _request_error(
            session,
            exception,
            f"describing consumer group {group} on {session.bootstrap_servers}",
        ) from exception


def describe_classic_group(session: AdminSession, group: str) -> list[dict[str, Any]]:
    """Return the group's members as the classic DescribeGroups request lists them.

    Opens a second AdminClient with _CLASSIC_DESCRIBE_SETTINGS and the session's
    other settings. Raises KafkaAdminError when the request fails.
    """
    classic = open_admin(
        session.bootstrap_servers,
        session.timeout,
        {**session.client_config, **_CLASSIC_DESCRIBE_SETTINGS},
    )
    return _member_entries(_describe_group(classic, classic.client, group))


def describe_consumer_group(session: AdminSession, group: str) -> dict[str, Any]:
    """Return the group's state and its members with the partitions each holds.

    The result is {"group", "state", "members": [{"client_id", "member_id", "host",
    "partitions": ["topic[0]", ...]}], "members_known", "assignments_known",
    "classic_error"}, members sorted by client_id. A group that no consumer has
    joined is returned with no members.

    librdkafka 2.x sends ConsumerGroupDescribe (key 69) to a broker that lists it.
    Tansu 0.6.0 lists it but answers for a classic group with the state and no
    members, which a Kafka broker never does for a stable group. Then the
    members are read again with the classic DescribeGroups (key 15). Tansu lists
    the members there, with their member ids but with empty client ids and empty
    assignments, so the client ids come from the member ids and the assignments
    are unknown (assignments_known is false).
    """
    description = _describe_group(session, session.client, group)
    state = str(description.state.name).lower()
    members = _member_entries(description)
    result: dict[str, Any] = {
        "group": group,
        "state": state,
        "members": members,
        "members_known": True,
        "assignments_known": True,
        "classic_error": "",
    }
    if members or state not in ("stable", "preparingrebalance"):
        return result

    try:
        members = describe_classic_group(session, group)
    except KafkaAdminError as error:
        result.update(members_known=False, classic_error=str(error))
        return result

    result["members"] = members
    result["members_known"] = bool(members)
    result["assignments_known"] = any(member["partitions"] for member in members)
    return result
