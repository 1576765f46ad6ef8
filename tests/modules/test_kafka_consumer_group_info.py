"""kafka_consumer_group_info against Tansu with real confluent-kafka consumers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from ansible.module_utils.kafka_admin import create_topic, open_admin
from confluent_kafka import Consumer
from kafka_consumer_group_info import compare_members
from module_support import free_port

MODULE = "kafka_consumer_group_info"

# Tansu lets a new member in after about half of session.timeout.ms, so a short
# timeout keeps these tests short.
SESSION_TIMEOUT_MS = 6000


class GroupMember:
    """A consumer that polls in a thread until stopped, as a deployed one does."""

    def __init__(self, bootstrap: str, group: str, topic: str, client_id: str) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "client.id": client_id,
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": 1000,
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.subscribe([topic])
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.stop.is_set():
            self.consumer.poll(0.2)

    def close(self) -> None:
        if self.stop.is_set():
            return
        self.stop.set()
        self.thread.join(timeout=10)
        self.consumer.close()


@pytest.fixture
def members() -> list[GroupMember]:
    """Return the list that group_factory appends its consumers to."""
    return []


@pytest.fixture
def group_factory(tansu_broker: str, members: list[GroupMember]) -> Iterator[Any]:
    def factory(partitions: int, client_ids: list[str]) -> tuple[str, str]:
        topic = f"test.{uuid.uuid4().hex[:12]}"
        group = f"group.{uuid.uuid4().hex[:12]}"
        create_topic(open_admin(tansu_broker, 5), topic, partitions, 1)
        for client_id in client_ids:
            members.append(GroupMember(tansu_broker, group, topic, client_id))
        return topic, group

    try:
        yield factory
    finally:
        for member in members:
            member.close()


def describe_until_members(
    module_runner: Any, args: dict[str, Any], count: int, attempts: int = 30
) -> Any:
    """Run the module until the stable group lists `count` members."""
    run = module_runner(MODULE, args)
    for _ in range(attempts):
        if run.result.get("state") == "stable" and len(run.result["members"]) == count:
            return run
        time.sleep(1)
        run = module_runner(MODULE, args)
    return run


def test_tansu_members_from_describe_groups(
    tansu_broker: str, module_runner: Any, group_factory: Any
) -> None:
    """Tansu 0.6.0 lists the members for DescribeGroups, not ConsumerGroupDescribe.

    Tansu leaves client ids and assignments empty there, so the client ids come
    from the member ids and the assignments are unknown.
    """
    _, group = group_factory(2, ["consumer-1", "consumer-2"])
    args = {
        "bootstrap_servers": tansu_broker,
        "group": group,
        "expected_members": ["consumer-1", "consumer-2", "consumer-3"],
        "timeout": 5,
    }

    run = describe_until_members(module_runner, args, 2)

    assert not run.failed, run.result
    assert run.result["state"] == "stable"
    assert run.result["members_known"] is True
    assert run.result["assignments_known"] is False
    assert [member["client_id"] for member in run.result["members"]] == [
        "consumer-1",
        "consumer-2",
    ]
    assert run.result["members"][0]["member_id"].startswith("consumer-1-")
    assert run.result["missing"] == ["consumer-3"]
    assert run.result["idle"] == []
    assert any("without their partitions" in text for text in run.warnings)


def test_tansu_closed_member_reported_missing(
    tansu_broker: str, module_runner: Any, group_factory: Any, members: Any
) -> None:
    _, group = group_factory(2, ["consumer-1", "consumer-2"])
    args = {
        "bootstrap_servers": tansu_broker,
        "group": group,
        "expected_members": ["consumer-1", "consumer-2"],
        "timeout": 5,
    }
    assert describe_until_members(module_runner, args, 2).result["missing"] == []

    # close() sends LeaveGroup, so the broker drops the member at once.
    members[1].close()
    run = describe_until_members(module_runner, args, 1)

    assert not run.failed, run.result
    assert run.result["members_known"] is True
    assert run.result["missing"] == ["consumer-2"]


def group_description(members: list[tuple[str, list[str]]]) -> dict[str, Any]:
    return {
        "group": "g",
        "state": "stable",
        "members_known": True,
        "assignments_known": True,
        "classic_error": "",
        "members": [
            {"client_id": name, "member_id": name, "host": "/h", "partitions": held}
            for name, held in members
        ],
    }


def test_compare_members_finds_missing_and_idle() -> None:
    found = compare_members(
        group_description([("consumer-1", ["t[0]"]), ("consumer-2", [])]),
        ["consumer-1", "consumer-2", "consumer-3"],
    )

    assert found["missing"] == ["consumer-3"]
    assert found["idle"] == ["consumer-2"]


def test_compare_members_all_assigned() -> None:
    found = compare_members(
        group_description([("consumer-1", ["t[0]"]), ("consumer-2", ["t[1]"])]),
        ["consumer-1", "consumer-2"],
    )

    assert found == {"missing": [], "idle": []}


def test_compare_members_unknown_reports_nothing() -> None:
    unknown = {**group_description([]), "members_known": False}

    found = compare_members(unknown, ["consumer-1"])

    assert found == {"missing": [], "idle": []}


def test_compare_members_assignments_unknown() -> None:
    description = {
        **group_description([("consumer-1", []), ("consumer-2", [])]),
        "assignments_known": False,
    }

    found = compare_members(description, ["consumer-1", "consumer-3"])

    assert found["missing"] == ["consumer-3"]
    assert found["idle"] == []


def test_unknown_group_has_no_members(tansu_broker: str, module_runner: Any) -> None:
    run = module_runner(
        MODULE,
        {
            "bootstrap_servers": tansu_broker,
            "group": f"group.{uuid.uuid4().hex[:12]}",
            "expected_members": ["consumer-1"],
            "timeout": 5,
        },
    )

    assert not run.failed, run.result
    assert run.result["members"] == []
    assert run.result["missing"] == ["consumer-1"]


def test_unreachable_broker_fails(module_runner: Any) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"

    run = module_runner(
        MODULE, {"bootstrap_servers": bootstrap, "group": "g", "timeout": 2}
    )

    assert run.failed
    assert f"Kafka broker {bootstrap} is unreachable" in run.result["msg"]
