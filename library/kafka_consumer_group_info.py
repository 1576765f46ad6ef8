#!/usr/bin/python
# Copyright: contributors to ollama-fleet
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402 (Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kafka_consumer_group_info
short_description: Read a Kafka consumer group's members and the partitions each holds
description:
  - Describes the group through confluent-kafka's AdminClient and returns the
    group's state and its members, each with its C(client.id) and its assigned
    partitions.
  - librdkafka 2.x sends ConsumerGroupDescribe (Kafka API key 69) when the broker
    lists it. When the response is a stable group without members, which Tansu
    0.6.0 returns for every classic group, the module asks again with the classic
    DescribeGroups (key 15).
  - With O(expected_members), also returns the expected client ids that are not in
    the group (RV(missing)) and the members that hold no partition (RV(idle)). A
    member without a partition is a consumer that receives no messages, which
    happens when a group has more members than the topic has partitions.
  - Never changes anything, so it reports C(changed=false) and runs in check mode.
options:
  group:
    description: Consumer group id.
    type: str
    required: true
  expected_members:
    description:
      - Client ids (the consumers' C(client.id)) that should be members of the
        group. Empty skips the comparison.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - kafka_connection
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - kafka-python's describe_groups fails against Tansu 0.6.0; confluent-kafka's
    works, which is why this module uses it.
  - Tansu 0.6.0 answers DescribeGroups with the member ids but with empty client
    ids and empty assignments. The module then reads each client id from the
    member id, which Kafka and Tansu build as C(<client.id>-<UUID>), and returns
    RV(assignments_known=false), so RV(idle) stays empty.
  - The classic request needs librdkafka's C(api.version.request=false) and
    C(broker.version.fallback=0.9.0), which librdkafka 2.x marks deprecated. On
    a client that rejects them, RV(members_known) is false.
  - A consumer joins its group about half of C(session.timeout.ms) after it
    starts, so a check right after a deploy needs retries.
requirements:
  - confluent-kafka on the host that runs the module
author:
  - ollama-fleet contributors
"""

EXAMPLES = r"""
- name: Wait until every consumer is in the group and holds a partition
  kafka_consumer_group_info:
    bootstrap_servers: kafka-1.example:9092
    group: archon-intelligence-consumer-group
    expected_members: [consumer-1, consumer-2]
  register: group_info
  until: group_info.missing == [] and group_info.idle == []
  retries: 15
  delay: 2
"""

RETURN = r"""
group:
  description: The consumer group id.
  returned: always
  type: str
  sample: archon-intelligence-consumer-group
state:
  description: Group state as the broker reports it, lower case.
  returned: always
  type: str
  sample: stable
members_known:
  description:
    - False when the broker described the group as stable but listed no members
      with either request, which a Kafka broker never does. Then RV(missing) and
      RV(idle) are empty and the module warns.
  returned: always
  type: bool
  sample: true
assignments_known:
  description:
    - False when the members came from DescribeGroups without any assignment, as
      Tansu 0.6.0 returns them. Then RV(idle) is empty and the module warns.
  returned: always
  type: bool
  sample: true
classic_error:
  description:
    - Error of the DescribeGroups request, when the module sent one and it
      failed; otherwise empty.
  returned: always
  type: str
  sample: ""
members:
  description: Members sorted by client id, each with the partitions it holds.
  returned: always
  type: list
  elements: dict
  sample:
    - client_id: consumer-1
      member_id: consumer-1-6f0c
      host: /10.89.200.1
      partitions: ["requests[0]", "requests[2]"]
missing:
  description: Entries of O(expected_members) that are not members of the group.
  returned: always
  type: list
  elements: str
  sample: [consumer-3]
idle:
  description: Client ids of members that hold no partition.
  returned: always
  type: list
  elements: str
  sample: [consumer-4]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.kafka_admin import (
    CONFLUENT_KAFKA_IMPORT_ERROR,
    CONNECTION_ARGUMENT_SPEC,
    HAS_CONFLUENT_KAFKA,
    KafkaAdminError,
    describe_consumer_group,
    open_admin_from_params,
    validate_connection_params,
)


def compare_members(
    description: dict[str, Any], expected_members: list[str]
) -> dict[str, list[str]]:
    """Return the expected client ids missing from the group and the idle members.

    Each list is empty when the description does not contain what it needs.
    """
    if not description["members_known"]:
        return {"missing": [], "idle": []}

    present = {member["client_id"] for member in description["members"]}
    missing = [client_id for client_id in expected_members if client_id not in present]
    if not description["assignments_known"]:
        return {"missing": missing, "idle": []}

    idle = [
        member["client_id"]
        for member in description["members"]
        if not member["partitions"]
    ]
    return {"missing": missing, "idle": idle}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **CONNECTION_ARGUMENT_SPEC,
            "group": {"type": "str", "required": True},
            "expected_members": {"type": "list", "elements": "str", "default": []},
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
        validate_connection_params(params)
    except ValueError as error:
        module.fail_json(msg=str(error))

    if not params["group"].strip():
        module.fail_json(msg="group is empty; set it to the consumers' group id")

    session = open_admin_from_params(params)
    try:
        description = describe_consumer_group(session, params["group"])
    except KafkaAdminError as error:
        module.fail_json(msg=str(error), group=params["group"])

    result = {**description, **compare_members(description, params["expected_members"])}
    if not description["members_known"]:
        module.warn(
            f"broker {params['bootstrap_servers']} describes group {params['group']} "
            f"as {description['state']} but lists no members, so membership cannot "
            "be checked. DescribeGroups: "
            f"{description['classic_error'] or 'no members either'}."
        )
    elif not description["assignments_known"]:
        module.warn(
            f"broker {params['bootstrap_servers']} lists the members of group "
            f"{params['group']} without their partitions, so members without a "
            "partition cannot be found. Tansu 0.6.0 answers DescribeGroups this "
            "way; Apache Kafka returns the assignments."
        )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
