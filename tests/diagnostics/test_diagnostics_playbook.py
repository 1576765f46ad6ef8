"""playbooks/diagnostics.yml against the bench fleet (inventory/bench).

Needs the bench fleet: `lab/labctl --inventory inventory/bench up` and
`ansible-playbook -i inventory/bench site.yml`. The tests are skipped when its
hosts are not running.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
VENV_BIN = REPOSITORY / ".venv" / "bin"
BENCH_HOSTS = ("bench-gpu-1", "bench-gpu-2", "bench-gpu-3")


def bench_fleet_running() -> bool:
    environment = {
        **os.environ,
        "CONTAINERS_CONF": str(REPOSITORY / "lab" / "containers.conf"),
    }
    for name in BENCH_HOSTS:
        result = subprocess.run(
            ["podman", "container", "inspect", "--format", "{{.State.Status}}", name],
            capture_output=True,
            text=True,
            env=environment,
            check=False,
        )
        if result.stdout.strip() != "running":
            return False
    return True


pytestmark = pytest.mark.skipif(
    not bench_fleet_running(),
    reason="the bench fleet is not running; see docs/benchmarks.md to start it",
)


def run_diagnostics(
    tmp_path: Path, *extra: str
) -> tuple[subprocess.CompletedProcess, Path]:
    archive = tmp_path / "diagnostics.tar.gz"
    environment = {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        "CONTAINERS_CONF": str(REPOSITORY / "lab" / "containers.conf"),
        "ANSIBLE_CONFIG": str(REPOSITORY / "ansible.cfg"),
    }
    completed = subprocess.run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            "inventory/bench",
            "playbooks/diagnostics.yml",
            "-e",
            f"diagnostics_archive={archive}",
            "-e",
            f"fleet_report_dir={tmp_path}",
            *extra,
        ],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return completed, archive


def read_members(archive: Path) -> dict[str, str]:
    """Return the archive's files by path below the staging folder."""
    members = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile():
                relative = (
                    member.name.split("/", 1)[-1] if "/" in member.name else member.name
                )
                members[relative] = tar.extractfile(member).read().decode()
    return members


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("diagnostics")
    completed, archive = run_diagnostics(tmp_path)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr
    return completed, read_members(archive)


def test_gpu_host_files_collected(full_run):
    _, members = full_run

    for name in BENCH_HOSTS:
        for file in (
            "unit-status.txt",
            "journal.txt",
            "unit-in-effect.txt",
            "listening-sockets.txt",
            "ufw.txt",
            "firewalld.txt",
            "api-ps.json",
            "nvidia-smi.txt",
        ):
            assert f"{name}/{file}" in members, f"{name}/{file} missing"


def test_drop_in_in_effect_recorded(full_run):
    _, members = full_run

    unit = members["bench-gpu-1/unit-in-effect.txt"]
    assert "override.conf" in unit
    assert "OLLAMA_EMULATOR_EMBED_ITEM_SECONDS=0.03" in unit


def test_sockets_firewall_and_api_recorded(full_run):
    _, members = full_run

    assert ":11434" in members["bench-gpu-2/listening-sockets.txt"]
    assert "Status: active" in members["bench-gpu-2/ufw.txt"]
    assert "exit status: 0" in members["bench-gpu-2/api-ps.json"]
    assert '"models"' in members["bench-gpu-2/api-ps.json"]
    assert "nvidia-smi: not installed" in members["bench-gpu-2/nvidia-smi.txt"]


def test_docker_host_files_collected(full_run):
    _, members = full_run

    logs = members["bench-controller/compose-logs.txt"]
    assert "consuming bench.code-analysis-requested.v1" in logs
    metrics = json.loads(members["bench-controller/consumer-metrics.json"])
    assert metrics["consumer-1"]["instance_id"] == "consumer-1"
    group = json.loads(members["bench-controller/consumer-group.json"])
    assert group.get("group") == "bench-consumer-group" or "msg" in group


def test_run_changes_nothing(full_run):
    completed, _ = full_run

    recap = completed.stdout.split("PLAY RECAP", 1)[1]
    assert "changed=0" in recap
    assert "changed=1" not in recap


def test_limit_collects_one_host(tmp_path):
    completed, archive = run_diagnostics(tmp_path, "-l", "bench-gpu-2")

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr
    hosts = {path.split("/", 1)[0] for path in read_members(archive)}
    assert hosts == {"bench-gpu-2"}
    assert str(archive) in completed.stdout
