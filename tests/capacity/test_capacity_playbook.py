"""playbooks/capacity.yml against two emulators with unequal service times.

The GPU hosts and the Docker host are the controller itself; the endpoints are
emulators on 127.0.0.1. The fast one serves a request in about 1/1.75 of the
slow one's time, so its ratio lands between the rounding boundary 1.5 and 2,
where a deployed count of 1 is kept and a first measurement gives 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_processes import (
    REPOSITORY,
    VENV_BIN,
    pull_model,
    run_ansible_playbook,
    start_emulator,
    stop_process,
)

PLAYBOOK = REPOSITORY / "playbooks" / "capacity.yml"
MEASURE_TASK = "Measure sequential embedding throughput per endpoint"
SLOW_ITEM_SECONDS = 0.02
FAST_ITEM_SECONDS = SLOW_ITEM_SECONDS / 1.75


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory) -> Iterator[dict[str, str]]:
    """Start the slow and the fast emulator; yield name to base URL."""
    started = {}
    try:
        for name, seconds in (
            ("gpu-a", SLOW_ITEM_SECONDS),
            ("gpu-b", FAST_ITEM_SECONDS),
        ):
            work_dir = tmp_path_factory.mktemp(name)
            url, process = start_emulator(
                work_dir, {"OLLAMA_EMULATOR_EMBED_ITEM_SECONDS": str(seconds)}
            )
            started[name] = (url, process)
            pull_model(url)
        yield {name: url for name, (url, _) in started.items()}
    finally:
        for _, process in started.values():
            stop_process(process)


def inventory(endpoints: dict[str, str], project_dir: Path) -> dict[str, Any]:
    local = {
        "ansible_connection": "local",
        "ansible_python_interpreter": str(VENV_BIN / "python"),
        # Host variables outrank the playbooks' group_vars/all.yml.
        "fleet_capacity_weighting": True,
    }
    gpu_hosts = {
        name: {
            **local,
            "ollama_advertise_address": "127.0.0.1",
            "ollama_port": int(url.rsplit(":", 1)[1]),
        }
        for name, url in endpoints.items()
    }
    docker_host = {
        **local,
        "consumers_project_dir": str(project_dir),
        "fleet_capacity_seconds": 1,
    }
    return {
        "all": {
            "children": {
                "ollama_hosts": {"hosts": gpu_hosts},
                "docker_hosts": {"hosts": {"docker-1": docker_host}},
            }
        }
    }


def run_capacity(
    tmp_path: Path, endpoints: dict[str, str], *arguments: str
) -> dict[str, Any]:
    """Run capacity.yml and return the measurement task's result on docker-1."""
    completed = run_ansible_playbook(
        PLAYBOOK,
        inventory(endpoints, tmp_path / "consumers"),
        tmp_path,
        timeout=300,
        arguments=arguments,
        env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"},
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr
    report = json.loads(completed.stdout)
    tasks = [task for play in report["plays"] for task in play["tasks"]]
    measured = [
        task["hosts"]["docker-1"]
        for task in tasks
        if task["task"]["name"]
        == "Measure sequential embedding throughput per endpoint"
    ]
    assert len(measured) == 1
    assert measured[0].get("changed") is False
    return measured[0]


def write_env(tmp_path: Path, urls: list[str]) -> None:
    project = tmp_path / "consumers"
    project.mkdir()
    lines = [
        f'OLLAMA_BASE_URL_CONSUMER_{number}="{url}"'
        for number, url in enumerate(urls, start=1)
    ]
    (project / ".env").write_text("\n".join([*lines, 'KAFKA_TOPIC="files"', ""]))


def test_first_measurement_gives_rounded_ratio(tmp_path, endpoints):
    result = run_capacity(tmp_path, endpoints)

    slow, fast = result["endpoints"]
    assert slow["consumers"] == 1
    assert 1.5 <= fast["ratio"] < 2.5
    assert fast["consumers"] == 2
    assert fast["kept_current"] is False


def test_deployed_count_kept_near_boundary(tmp_path, endpoints):
    write_env(tmp_path, [endpoints["gpu-a"], endpoints["gpu-b"]])

    result = run_capacity(tmp_path, endpoints)

    _, fast = result["endpoints"]
    assert 1.25 < fast["ratio"] < 2.0
    assert fast["consumers"] == 1
    assert result["consumers_per_endpoint"] == {"gpu-a": 1, "gpu-b": 1}


def test_far_count_replaced_check_mode(tmp_path, endpoints):
    # Four consumers on gpu-b is more than 0.75 away from a ratio near 1.75.
    write_env(tmp_path, [endpoints["gpu-a"], *[endpoints["gpu-b"]] * 4])

    result = run_capacity(tmp_path, endpoints, "--check")

    _, fast = result["endpoints"]
    assert fast["consumers"] == 2
    assert fast["kept_current"] is False
