#!/usr/bin/python
# Copyright: contributors to ollama-fleet
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402 (Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kafka_topic_partitions
short_description: Ensure a Kafka topic exists with at least a number of partitions
description:
  - Creates the topic with O(partitions) partitions when it is missing, and raises
    its partition count to O(partitions) when it has fewer.
  - Never decreases the partition count, because Kafka cannot remove partitions. A
    topic with more partitions than requested is left alone with a warning.
  - Consumers in one group share a topic's partitions, so the partition count caps
    how many consumers receive messages at the same time.
  - Raising the count needs the CreatePartitions request (Kafka API key 37,
    KIP-195), which Apache Kafka 1.0.0 and later support. When the broker lacks
    it, the module fails with a message that names the request and those versions.
  - Raising the count changes which partition a message key maps to, because the
    default partitioner takes the key's hash modulo the partition count. The
    module warns when it raises the count.
options:
  topic:
    description: Topic name.
    type: str
    required: true
  partitions:
    description:
      - Minimum number of partitions, usually the number of consumers in the group
        plus any headroom.
    type: int
    required: true
  replication_factor:
    description:
      - Replication factor for a topic that the module creates. Ignored for an
        existing topic.
    type: int
    default: 1
  create:
    description:
      - Whether to create a missing topic. With V(false) a missing topic is an
        error, which suits a cluster where topics are created by another team and
        C(auto.create.topics.enable) is off.
    type: bool
    default: true
  check_mode_validate_create:
    description:
      - In check mode, send the CreateTopics request with C(validate_only) so the
        broker checks it, for example the replication factor against its number of
        brokers.
      - Off by default because some Kafka-compatible brokers ignore
        C(validate_only) and create the topic. Tansu 0.6.0 does.
      - Raising partitions in check mode always sends CreatePartitions with
        C(validate_only). That request is only sent to brokers that support it,
        which are Kafka 1.0.0 or later and honour C(validate_only).
    type: bool
    default: false
extends_documentation_fragment:
  - kafka_connection
attributes:
  check_mode:
    support: full
    description:
      - Reports the change without making it. See O(check_mode_validate_create).
  diff_mode:
    support: full
    description: Shows the partition count before and after.
requirements:
  - confluent-kafka on the host that runs the module
author:
  - ollama-fleet contributors
"""

EXAMPLES = r"""
- name: Give the requests topic one partition per consumer
  kafka_topic_partitions:
    bootstrap_servers: kafka-1.example:9092,kafka-2.example:9092
    topic: dev.archon-intelligence.intelligence.code-analysis-requested.v1
    partitions: 4
    replication_factor: 3

- name: Size the topic on a SASL_SSL listener
  kafka_topic_partitions:
    bootstrap_servers: kafka-1.example:9093
    topic: dev.archon-intelligence.intelligence.code-analysis-requested.v1
    partitions: 4
    security_protocol: SASL_SSL
    sasl_mechanism: SCRAM-SHA-512
    sasl_username: fleet-admin
    sasl_password: "{{ vault_kafka_admin_password }}"
    ssl_cafile: /etc/ssl/certs/kafka-ca.pem

- name: Fail unless the topic already exists with enough partitions
  kafka_topic_partitions:
    bootstrap_servers: kafka-1.example:9092
    topic: dev.archon-intelligence.intelligence.code-analysis-requested.v1
    partitions: 4
    create: false
"""

RETURN = r"""
topic:
  description: The topic name.
  returned: always
  type: str
  sample: dev.archon-intelligence.intelligence.code-analysis-requested.v1
partitions_before:
  description:
    - Partition count before the module ran, or None when the topic was missing.
  returned: always
  type: int
  sample: 2
partitions:
  description:
    - Partition count after the module ran, or in check mode the count it would have.
  returned: always
  type: int
  sample: 4
created:
  description: Whether the topic was (or in check mode would be) created.
  returned: always
  type: bool
  sample: false
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.kafka_admin import (
    CONFLUENT_KAFKA_IMPORT_ERROR,
    CONNECTION_ARGUMENT_SPEC,
    HAS_CONFLUENT_KAFKA,
    AdminSession,
    KafkaAdminError,
    TopicNotFoundError,
    check_reachable,
    create_partitions,
    create_topic,
    describe_partition_count,
    open_admin_from_params,
    validate_connection_params,
)


def ensure_partitions(
    session: AdminSession,
    topic: str,
    partitions: int,
    replication_factor: int,
    create: bool,
    check_mode: bool,
    check_mode_validate_create: bool,
) -> tuple[dict[str, Any], list[str]]:
    """Bring the topic to at least `partitions` partitions.

    Returns (module result, warnings). Raises KafkaAdminError for a broker or
    request failure and TopicNotFoundError for a missing topic with create=False.
    """
    check_reachable(session)
    before = describe_partition_count(session, topic)
    result: dict[str, Any] = {
        "topic": topic,
        "partitions_before": before,
        "partitions": before,
        "created": False,
        "changed": False,
    }
    warnings: list[str] = []

    if before is None:
        if not create:
            raise TopicNotFoundError(
                f"topic {topic} does not exist on {session.bootstrap_servers} and "
                "create is false; create the topic or set create to true"
            )

        if not check_mode or check_mode_validate_create:
            create_topic(
                session, topic, partitions, replication_factor, validate_only=check_mode
            )
        result.update(partitions=partitions, created=True, changed=True)
        return result, warnings

    if before > partitions:
        warnings.append(
            f"topic {topic} has {before} partitions, more than the requested "
            f"{partitions}; Kafka cannot remove partitions, so it keeps {before}"
        )
        return result, warnings

    if before < partitions:
        create_partitions(session, topic, before, partitions, validate_only=check_mode)
        result.update(partitions=partitions, changed=True)
        warnings.append(
            f"topic {topic} grows from {before} to {partitions} partitions, so "
            "messages with a key now go to a different partition than before "
            "(hash of the key modulo the partition count). Ordering per key holds "
            "only among messages produced after the change."
        )

    return result, warnings


def build_diff(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the topic's state before and after, for --diff."""
    before: dict[str, Any] = {"exists": result["partitions_before"] is not None}
    if before["exists"]:
        before["partitions"] = result["partitions_before"]

    return {
        "before": before,
        "after": {"exists": True, "partitions": result["partitions"]},
    }


def validate_settings(params: dict[str, Any]) -> None:
    """Raise ValueError naming the first invalid option."""
    validate_connection_params(params)

    if not params["topic"].strip():
        raise ValueError("topic is empty")

    if params["partitions"] < 1:
        raise ValueError(f"partitions must be 1 or more, got {params['partitions']}")

    if params["replication_factor"] < 1:
        raise ValueError(
            f"replication_factor must be 1 or more, got {params['replication_factor']}"
        )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **CONNECTION_ARGUMENT_SPEC,
            "topic": {"type": "str", "required": True},
            "partitions": {"type": "int", "required": True},
            "replication_factor": {"type": "int", "default": 1},
            "create": {"type": "bool", "default": True},
            "check_mode_validate_create": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    if not HAS_CONFLUENT_KAFKA:
        module.fail_json(
            msg=missing_required_lib("confluent-kafka"),
            exception=CONFLUENT_KAFKA_IMPORT_ERROR,
        )

    params = module.params
    try:
        validate_settings(params)
    except ValueError as error:
        module.fail_json(msg=str(error))

    session = open_admin_from_params(params)
    try:
        result, warnings = ensure_partitions(
            session,
            params["topic"],
            params["partitions"],
            params["replication_factor"],
            params["create"],
            module.check_mode,
            params["check_mode_validate_create"],
        )
    except KafkaAdminError as error:
        module.fail_json(msg=str(error), topic=params["topic"])

    for warning in warnings:
        module.warn(warning)

    if module._diff:
        result["diff"] = build_diff(result)

    module.exit_json(**result)


if __name__ == "__main__":
    main()
