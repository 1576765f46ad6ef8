"""A minimal Kafka broker for tests only. Never run it as a real broker.

It speaks the real Kafka wire protocol, encoded and decoded with the `kio`
package's generated schemas, but keeps topics as partition counts in memory and
stores no messages. It implements only what confluent-kafka's AdminClient
needs to create a topic, read its partition count and raise it:

- ApiVersions (key 18), Metadata (key 3), CreateTopics (key 19) and DeleteTopics
  (key 20), up to the versions in IMPLEMENTED_VERSIONS
- CreatePartitions (key 37), unless started with create_partitions=False
- SaslHandshake (key 17) and SaslAuthenticate (key 36), PLAIN only, when started
  with sasl_users

It exists because the lab's broker, Tansu 0.6.0, lacks CreatePartitions, and no
Apache Kafka can be installed on the test machines. Every request is counted by
API name in `Broker.requests`, so a test can prove that a request was or was not
sent.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import io
import logging
import socketserver
import struct
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.schema.response_header.v0.header import ResponseHeader as ResponseHeaderV0
from kio.schema.response_header.v1.header import ResponseHeader as ResponseHeaderV1
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i16, i32, i32Timedelta

LOG = logging.getLogger("kafka_test_broker")

API_VERSIONS = 18
METADATA = 3
CREATE_TOPICS = 19
DELETE_TOPICS = 20
CREATE_PARTITIONS = 37
SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36

# API key to the highest request version the broker decodes. ApiVersions lists
# each as 0 to that version, because librdkafka enables its Admin API only when
# the broker lists version 0 of CreateTopics and DeleteTopics. Responses are
# encoded in the version of the request.
IMPLEMENTED_VERSIONS: dict[int, int] = {
    API_VERSIONS: 3,
    METADATA: 12,
    CREATE_TOPICS: 7,
    DELETE_TOPICS: 6,
    CREATE_PARTITIONS: 3,
}
SASL_IMPLEMENTED_VERSIONS: dict[int, int] = {
    SASL_HANDSHAKE: 1,
    SASL_AUTHENTICATE: 2,
}

API_NAMES = {
    API_VERSIONS: "ApiVersions",
    METADATA: "Metadata",
    CREATE_TOPICS: "CreateTopics",
    DELETE_TOPICS: "DeleteTopics",
    CREATE_PARTITIONS: "CreatePartitions",
    SASL_HANDSHAKE: "SaslHandshake",
    SASL_AUTHENTICATE: "SaslAuthenticate",
}

NODE_ID = 1
CLUSTER_ID = "kafka-test-broker"
NO_THROTTLE = i32Timedelta.parse(timedelta(0))


@dataclass
class Broker:
    """State of the test broker: topics, request counters and settings."""

    host: str
    port: int = 0
    create_partitions: bool = True
    sasl_users: dict[str, str] = field(default_factory=dict)
    topics: dict[str, int] = field(default_factory=dict)
    topic_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    validate_only_requests: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def implemented_versions(self) -> dict[int, int]:
        versions = dict(IMPLEMENTED_VERSIONS)
        if not self.create_partitions:
            del versions[CREATE_PARTITIONS]
        if self.sasl_users:
            versions.update(SASL_IMPLEMENTED_VERSIONS)
        return versions

    def add_topic(self, name: str, partitions: int) -> None:
        with self.lock:
            self.topics[name] = partitions
            self.topic_ids[name] = uuid.uuid4()


class Connection(socketserver.BaseRequestHandler):
    """One client connection: read size-prefixed requests, write responses."""

    server: _Server

    def setup(self) -> None:
        self.authenticated = not self.server.broker.sasl_users

    def handle(self) -> None:
        while True:
            size_bytes = self._read_exact(4)
            if size_bytes is None:
                return
            (size,) = struct.unpack(">i", size_bytes)
            frame = self._read_exact(size)
            if frame is None:
                return
            response = self.respond(frame)
            if response is None:
                return
            self.request.sendall(struct.pack(">i", len(response)) + response)

    def _read_exact(self, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = self.request.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def respond(self, frame: bytes) -> bytes | None:
        """Decode one request and return the encoded response, or None to close."""
        broker = self.server.broker
        api_key, api_version = struct.unpack(">hh", frame[:4])
        name = API_NAMES.get(api_key, f"key {api_key}")
        with broker.lock:
            broker.requests[name] += 1

        implemented = broker.implemented_versions()
        if api_key not in implemented:
            LOG.warning("closing connection: unsupported request %s", name)
            return None

        if api_key == API_VERSIONS and api_version > implemented[API_VERSIONS]:
            # KIP-511: answer an unknown ApiVersions version with a v0 response
            # that lists the supported versions, so the client retries lower.
            correlation_id = struct.unpack(">i", frame[4:8])[0]
            return self._encode(
                ResponseHeaderV0, correlation_id, self._api_versions(0, True)
            )
        if api_version > implemented[api_key]:
            LOG.warning("closing connection: %s v%s unsupported", name, api_version)
            return None

        request_cls = load_request_schema(api_key, api_version)
        header_cls = RequestHeaderV2 if request_cls.__flexible__ else RequestHeaderV1
        header, offset = entity_reader(header_cls)(frame, 0)
        request, _ = entity_reader(request_cls)(frame, offset)

        if not self.authenticated and api_key not in (
            API_VERSIONS,
            SASL_HANDSHAKE,
            SASL_AUTHENTICATE,
        ):
            LOG.warning("closing connection: %s before authentication", name)
            return None

        body, close_after = self.dispatch(api_key, api_version, request)
        if api_key == API_VERSIONS:
            response_header_cls = ResponseHeaderV0
        elif body.__flexible__:
            response_header_cls = ResponseHeaderV1
        else:
            response_header_cls = ResponseHeaderV0
        encoded = self._encode(response_header_cls, header.correlation_id, body)
        if close_after:
            self.request.sendall(struct.pack(">i", len(encoded)) + encoded)
            return None
        return encoded

    @staticmethod
    def _encode(header_cls: type, correlation_id: int, body: Any) -> bytes:
        buffer = io.BytesIO()
        entity_writer(header_cls)(
            buffer, header_cls(correlation_id=i32(correlation_id))
        )
        entity_writer(type(body))(buffer, body)
        return buffer.getvalue()

    def dispatch(self, api_key: int, version: int, request: Any) -> tuple[Any, bool]:
        """Return (response body, whether to close the connection after it)."""
        schema = load_response_schema(api_key, version)
        nested = ResponseClasses(schema)
        if api_key == API_VERSIONS:
            return self._api_versions(schema, nested, False), False
        if api_key == METADATA:
            return self._metadata(schema, nested, request), False
        if api_key == CREATE_TOPICS:
            return self._create_topics(schema, nested, request), False
        if api_key == DELETE_TOPICS:
            return self._delete_topics(schema, nested, request), False
        if api_key == CREATE_PARTITIONS:
            return self._create_partitions(schema, nested, request), False
        if api_key == SASL_HANDSHAKE:
            return self._sasl_handshake(schema, request), False
        return self._sasl_authenticate(schema, request)

    def _api_versions(
        self, schema: type, nested: ResponseClasses, unsupported: bool
    ) -> Any:
        keys = tuple(
            nested.make(
                "ApiVersion",
                api_key=i16(key),
                min_version=i16(0),
                max_version=i16(version),
            )
            for key, version in sorted(
                self.server.broker.implemented_versions().items()
            )
        )
        error = ErrorCode.unsupported_version if unsupported else ErrorCode.none
        return make(schema, error_code=error, api_keys=keys, throttle_time=NO_THROTTLE)

    def _metadata(self, schema: type, nested: ResponseClasses, request: Any) -> Any:
        broker = self.server.broker
        with broker.lock:
            if request.topics is None:
                names = sorted(broker.topics)
            else:
                names = [topic.name for topic in request.topics]
            topics = [self._metadata_topic(nested, name) for name in names]
        return make(
            schema,
            throttle_time=NO_THROTTLE,
            brokers=(
                nested.make(
                    "MetadataResponseBroker",
                    node_id=i32(NODE_ID),
                    host=broker.host,
                    port=i32(broker.port),
                ),
            ),
            cluster_id=CLUSTER_ID,
            controller_id=i32(NODE_ID),
            topics=tuple(topics),
        )

    def _metadata_topic(self, nested: ResponseClasses, name: str) -> Any:
        broker = self.server.broker
        count = broker.topics.get(name)
        if count is None:
            # The broker never creates a topic on a metadata request, like a Kafka
            # broker with auto.create.topics.enable=false.
            return nested.make(
                "MetadataResponseTopic",
                error_code=ErrorCode.unknown_topic_or_partition,
                name=name,
                topic_id=None,
                partitions=(),
            )
        partitions = tuple(
            nested.make(
                "MetadataResponsePartition",
                error_code=ErrorCode.none,
                partition_index=i32(index),
                leader_id=i32(NODE_ID),
                replica_nodes=(i32(NODE_ID),),
                isr_nodes=(i32(NODE_ID),),
            )
            for index in range(count)
        )
        return nested.make(
            "MetadataResponseTopic",
            error_code=ErrorCode.none,
            name=name,
            topic_id=broker.topic_ids[name],
            partitions=partitions,
        )

    def _create_topics(
        self, schema: type, nested: ResponseClasses, request: Any
    ) -> Any:
        broker = self.server.broker
        if request.validate_only:
            broker.validate_only_requests["CreateTopics"] += 1
        results = []
        for topic in request.topics:
            error, message = ErrorCode.none, None
            if topic.name in broker.topics:
                error = ErrorCode.topic_already_exists
                message = f"Topic '{topic.name}' already exists."
            elif topic.num_partitions < 1:
                error = ErrorCode.invalid_partitions
                message = "Number of partitions must be larger than 0."
            elif topic.replication_factor > 1:
                error = ErrorCode.invalid_replication_factor
                message = (
                    f"Replication factor: {topic.replication_factor} larger than "
                    "available brokers: 1."
                )
            elif not request.validate_only:
                broker.add_topic(topic.name, topic.num_partitions)
            results.append(
                nested.make(
                    "CreatableTopicResult",
                    name=topic.name,
                    topic_id=broker.topic_ids.get(topic.name),
                    error_code=error,
                    error_message=message,
                    num_partitions=i32(topic.num_partitions),
                    replication_factor=i16(1),
                    configs=(),
                )
            )
        return make(schema, throttle_time=NO_THROTTLE, topics=tuple(results))

    def _delete_topics(
        self, schema: type, nested: ResponseClasses, request: Any
    ) -> Any:
        broker = self.server.broker
        names = list(getattr(request, "topic_names", ()))
        names += [topic.name for topic in getattr(request, "topics", ())]
        results = []
        with broker.lock:
            for name in names:
                error = ErrorCode.none
                if broker.topics.pop(name, None) is None:
                    error = ErrorCode.unknown_topic_or_partition
                results.append(
                    nested.make(
                        "DeletableTopicResult",
                        name=name,
                        topic_id=None,
                        error_code=error,
                        error_message=None,
                    )
                )
        return make(schema, throttle_time=NO_THROTTLE, responses=tuple(results))

    def _create_partitions(
        self, schema: type, nested: ResponseClasses, request: Any
    ) -> Any:
        broker = self.server.broker
        if request.validate_only:
            broker.validate_only_requests["CreatePartitions"] += 1
        results = []
        with broker.lock:
            for topic in request.topics:
                error, message = ErrorCode.none, None
                current = broker.topics.get(topic.name)
                if current is None:
                    error = ErrorCode.unknown_topic_or_partition
                    message = f"The topic '{topic.name}' does not exist."
                elif topic.count <= current:
                    # Apache Kafka rejects a count equal to or below the current one.
                    error = ErrorCode.invalid_partitions
                    message = (
                        f"Topic currently has {current} partitions, which is higher "
                        f"than or equal to the requested {topic.count}."
                    )
                elif not request.validate_only:
                    broker.topics[topic.name] = topic.count
                results.append(
                    nested.make(
                        "CreatePartitionsTopicResult",
                        name=topic.name,
                        error_code=error,
                        error_message=message,
                    )
                )
        return make(schema, throttle_time=NO_THROTTLE, results=tuple(results))

    def _sasl_handshake(self, schema: type, request: Any) -> Any:
        error = ErrorCode.none
        if request.mechanism != "PLAIN":
            error = ErrorCode.unsupported_sasl_mechanism
        return make(schema, error_code=error, mechanisms=("PLAIN",))

    def _sasl_authenticate(self, schema: type, request: Any) -> tuple[Any, bool]:
        # PLAIN sends "authzid NUL username NUL password" (RFC 4616).
        parts = bytes(request.auth_bytes).split(b"\0")
        users = self.server.broker.sasl_users
        if len(parts) == 3 and users.get(parts[1].decode()) == parts[2].decode():
            self.authenticated = True
            response = make(
                schema, error_code=ErrorCode.none, error_message=None, auth_bytes=b""
            )
            return response, False
        response = make(
            schema,
            error_code=ErrorCode.sasl_authentication_failed,
            error_message="Authentication failed: Invalid username or password",
            auth_bytes=b"",
        )
        return response, True


def make(cls: type, /, **values: Any) -> Any:
    """Instantiate a kio schema class from the values its version has fields for.

    Fields differ between versions of a message, so handlers pass the union of
    the fields they fill and each version keeps its own.
    """
    names = {item.name for item in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in values.items() if key in names})


class ResponseClasses:
    """The nested classes of one response version, looked up by class name."""

    def __init__(self, schema: type) -> None:
        self.module = importlib.import_module(schema.__module__)

    def make(self, class_name: str, /, **values: Any) -> Any:
        return make(getattr(self.module, class_name), **values)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    broker: Broker


def start(
    host: str = "127.0.0.1",
    port: int = 0,
    create_partitions: bool = True,
    sasl_users: dict[str, str] | None = None,
) -> tuple[Broker, _Server]:
    """Start the broker in a background thread; stop it with server.shutdown()."""
    server = _Server((host, port), Connection)
    broker = Broker(
        host=host,
        port=server.server_address[1],
        create_partitions=create_partitions,
        sasl_users=dict(sasl_users or {}),
    )
    server.broker = broker
    threading.Thread(
        target=server.serve_forever, name="kafka-test-broker", daemon=True
    ).start()
    return broker, server


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Kafka protocol broker for tests only."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9092, help="TCP port")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    broker, server = start(arguments.host, arguments.port)
    LOG.info("test broker listening on %s", broker.bootstrap_servers)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
