"""playbooks/diagnostics.yml against the converged local lab (inventory/lab).

Needs the lab: `make lab`. `make test` converges it first and sets
FLEET_REQUIRE_LAB=1, so there a missing lab fails the tests; elsewhere they
are skipped.
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
LAB_HOSTS = ("lab-gpu-1", "lab-gpu-2", "lab-gpu-3")


def lab_running() -> bool:
    environment = {
        **os.environ,
        "CONTAINERS_CONF": str(REPOSITORY / "lab" / "containers.conf"),
    }
    for name in LAB_HOSTS:
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


LAB_MISSING = "the lab is not running; start it with `make lab`"

if os.environ.get("FLEET_REQUIRE_LAB") == "1":
    if not lab_running():
        pytest.fail(LAB_MISSING, pytrace=False)
else:
    pytestmark = pytest.mark.skipif(not lab_running(), reason=LAB_MISSING)


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
            "inventory/lab",
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

    for name in LAB_HOSTS:
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

    unit = members["lab-gpu-1/unit-in-effect.txt"]
    assert "override.conf" in unit
    assert 'Environment="OLLAMA_HOST=0.0.0.0:11434"' in unit


def test_sockets_firewall_and_api_recorded(full_run):
    _, members = full_run

    assert ":11434" in members["lab-gpu-1/listening-sockets.txt"]
    assert "Status: active" in members["lab-gpu-1/ufw.txt"]
    # The lab runs firewalld on lab-gpu-2 and ufw on the others.
    assert "running" in members["lab-gpu-2/firewalld.txt"]
    assert "exit status: 0" in members["lab-gpu-1/api-ps.json"]
    assert '"models"' in members["lab-gpu-1/api-ps.json"]
    assert "nvidia-smi: not installed" in members["lab-gpu-1/nvidia-smi.txt"]


def test_docker_host_files_collected(full_run):
    _, members = full_run

    topic = "dev.archon-intelligence.intelligence.code-analysis-requested.v1"
    logs = members["lab-controller/compose-logs.txt"]
    assert f"consuming {topic}" in logs
    metrics = json.loads(members["lab-controller/consumer-metrics.json"])
    assert metrics["consumer-1"]["instance_id"] == "consumer-1"
    group = json.loads(members["lab-controller/consumer-group.json"])
    assert group.get("group") == "archon-intelligence-consumer-group"


def test_run_changes_nothing(full_run):
    completed, _ = full_run

    recap = completed.stdout.split("PLAY RECAP", 1)[1]
    assert "changed=0" in recap
    assert "changed=1" not in recap


def test_limit_collects_one_host(tmp_path):
    completed, archive = run_diagnostics(tmp_path, "-l", "lab-gpu-2")

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr
    hosts = {path.split("/", 1)[0] for path in read_members(archive)}
    assert hosts == {"lab-gpu-2"}
    assert str(archive) in completed.stdout
