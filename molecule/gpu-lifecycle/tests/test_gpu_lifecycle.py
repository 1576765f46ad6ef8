"""Life-cycle steps on the converged scenario hosts, each followed by its checks.

Converge installed Ollama 0.13.5 (.tgz) on both GPU hosts. The tests below run
playbooks/ollama.yml again with other variables (upgrade, downgrade with a
setting change, model list changes, another port, a bad value, a rolling change
that fails) and check the hosts through podman:// connections. They depend on
each other's results and run in file order.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import testinfra

HOSTS = ["gpu-lifecycle-1", "gpu-lifecycle-2"]
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[3]))
SCENARIO = Path(__file__).resolve().parents[1]
OLLAMA_PLAYBOOK = PROJECT / "playbooks" / "ollama.yml"
DROP_IN = "/etc/systemd/system/ollama.service.d/override.conf"
LIB_DIR = "/usr/local/lib/ollama"
PROFILE_SCRIPT = "/etc/profile.d/ollama.sh"
FAKE_NVIDIA_SMI = "/usr/local/bin/nvidia-smi"
PORT_HOLDER_UNIT = "gpu-lifecycle-port-holder"
APPLIED_MARKER = "/var/lib/ollama-fleet/ollama-applied.sha1"
DRIFT_TASK = "Restart Ollama when it runs with settings older than its files"
RESTART_HANDLERS = (
    "Restart Ollama",
    "Record the settings the Ollama service was restarted with",
)


def inventory() -> str:
    """Return molecule's inventory folder for this scenario."""
    inventory_file = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not inventory_file:
        pytest.fail("MOLECULE_INVENTORY_FILE is not set; run this through molecule")
    return str(Path(inventory_file).parent)


def run_playbook(playbook: Path, extra_vars: dict[str, Any] | None = None) -> dict:
    """Run a playbook against the scenario and return the JSON callback's output.

    The return code is added as "rc"; a failed run is returned, not raised.
    """
    command = ["ansible-playbook", "-i", inventory(), str(playbook)]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    environment = dict(os.environ)
    environment["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    environment["ANSIBLE_CONFIG"] = str(PROJECT / "ansible.cfg")
    result = subprocess.run(
        command, capture_output=True, text=True, env=environment, check=False
    )
    try:
        output = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"{playbook.name} printed no JSON: {result.stdout[-2000:]}")
    output["rc"] = result.returncode
    output["stderr"] = result.stderr
    return output


def changed_counts(output: dict) -> dict[str, int]:
    return {host: stats["changed"] for host, stats in output["stats"].items()}


def failure_messages(output: dict) -> list[str]:
    """Collect the msg of every failed task result, for assertion messages."""
    messages = []
    for play in output.get("plays", []):
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("failed") and not result.get("ignore_errors"):
                    messages.append(f"{host}: {result.get('msg')}")
    return messages


def host(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{name}")


def api(name: str, path: str, port: int = 11434) -> dict:
    """Call the host's Ollama API from inside the host."""
    output = host(name).check_output(f"curl -sf http://127.0.0.1:{port}{path}")
    return json.loads(output)


def host_clock(name: str) -> int:
    """Return the host's clock in microseconds since the epoch."""
    return int(host(name).check_output("date +%s%6N"))


def service_starts_since(name: str, since: int) -> int:
    """Count systemd's "Started ollama.service" journal entries after a host time.

    journalctl's --since works in whole seconds. A restart earlier in the same
    second would pass that filter, so each entry's microsecond timestamp decides.
    """
    lines = host(name).check_output(
        f"journalctl -u ollama -o json --no-pager --since @{since // 1_000_000}"
    )
    return sum(
        1
        for entry in map(json.loads, filter(None, lines.splitlines()))
        if int(entry["__REALTIME_TIMESTAMP"]) > since
        and str(entry.get("MESSAGE", "")).startswith("Started ollama")
    )


def service_environment(name: str) -> dict[str, str]:
    """Read the environment of the running ollama serve process.

    The container's root lacks CAP_SYS_PTRACE, so it reads the file as the
    process's own user.
    """
    target = host(name)
    pid = target.check_output("systemctl show -p MainPID --value ollama")
    raw = target.check_output(
        f"runuser -u ollama -- cat /proc/{pid}/environ | tr '\\0' '\\n'"
    )
    return dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)


def mtime(name: str, path: str) -> str:
    return host(name).check_output(f"stat -c %Y.%y {path}")


# --- Fresh install (converge) -----------------------------------------------


@pytest.mark.parametrize("name", HOSTS)
def test_fresh_install_runs_0_13_5(name: str) -> None:
    target = host(name)

    assert api(name, "/api/version")["version"] == "0.13.5"
    assert target.file(f"{LIB_DIR}/.ollama-fleet-version").content_string == "0.13.5\n"
    assert target.file("/var/cache/ollama-fleet/0.13.5/ollama-linux-amd64.tgz").exists


@pytest.mark.parametrize("name", HOSTS)
def test_fresh_install_drop_in_settings(name: str) -> None:
    content = host(name).file(DROP_IN).content_string
    environment = service_environment(name)

    assert 'Environment="OLLAMA_HOST=0.0.0.0:11434"' in content
    assert environment["OLLAMA_HOST"] == "0.0.0.0:11434"
    assert environment["OLLAMA_KEEP_ALIVE"] == "5m"
    assert environment["OLLAMA_MAX_QUEUE"] == "512"


@pytest.mark.parametrize("name", HOSTS)
def test_cli_default_port_login_shell(name: str) -> None:
    target = host(name)
    listing = target.run("bash -lc 'ollama list'")

    assert not target.file(PROFILE_SCRIPT).exists
    assert listing.rc == 0, listing.stderr
    assert "nomic-embed-text:latest" in listing.stdout


# --- GPU facts ----------------------------------------------------------------


def test_gpu_facts_from_nvidia_smi() -> None:
    # TEST DOUBLE: a fake nvidia-smi on the first host prints the real tool's
    # output for two A100 GPUs. The second host has none and counts as CPU.
    fake = (
        "#!/bin/sh\n"
        "# TEST DOUBLE written by molecule/gpu-lifecycle, not NVIDIA's tool.\n"
        'echo "NVIDIA A100-SXM4-80GB, 81920 MiB"\n'
        'echo "NVIDIA A100-SXM4-80GB, 81920 MiB"\n'
    )
    first = host(HOSTS[0])
    first.run(
        f"cat > {FAKE_NVIDIA_SMI} <<'EOF'\n{fake}EOF\nchmod 0755 {FAKE_NVIDIA_SMI}"
    )

    output = run_playbook(SCENARIO / "gpu-facts.yml")

    first.run(f"rm -f {FAKE_NVIDIA_SMI}")
    gpu_by_host = {}
    for task in output["plays"][0]["tasks"]:
        for name, result in task["hosts"].items():
            if "fleet_gpu" in result:
                gpu_by_host[name] = result["fleet_gpu"]
    assert output["rc"] == 0, failure_messages(output)
    assert gpu_by_host[HOSTS[0]] == "2x NVIDIA A100-SXM4-80GB (81920 MiB)"
    assert gpu_by_host[HOSTS[1]] == "CPU"


# --- Upgrade 0.13.5 (.tgz) -> 0.32.14 (.tar.zst) ----------------------------


def test_upgrade_replaces_release() -> None:
    for name in HOSTS:
        host(name).run(f"touch {LIB_DIR}/left-by-0.13.5")
    drop_ins = {name: host(name).file(DROP_IN).content_string for name in HOSTS}
    clocks = {name: host_clock(name) for name in HOSTS}

    output = run_playbook(OLLAMA_PLAYBOOK, {"ollama_version": "0.32.14"})

    assert output["rc"] == 0, failure_messages(output)
    for name in HOSTS:
        target = host(name)
        assert api(name, "/api/version")["version"] == "0.32.14"
        assert not target.file(f"{LIB_DIR}/left-by-0.13.5").exists
        assert target.file(
            "/var/cache/ollama-fleet/0.32.14/ollama-linux-amd64.tar.zst"
        ).exists
        assert target.file(DROP_IN).content_string == drop_ins[name]
        assert service_starts_since(name, clocks[name]) == 1


def test_rerun_unchanged_lost_restart_caught() -> None:
    # On the first host, make the running service older than its files, as when a
    # play fails after writing the drop-in and so drops the pending restart. The
    # service restarts with another keep-alive, then the role's drop-in comes back
    # with a marker that predates it.
    first = host(HOSTS[0])
    first.check_output(
        f"cp {DROP_IN} /root/override.conf.role"
        f" && sed -i 's/OLLAMA_KEEP_ALIVE=5m/OLLAMA_KEEP_ALIVE=7m/' {DROP_IN}"
        " && systemctl daemon-reload && systemctl restart ollama"
        f" && cp /root/override.conf.role {DROP_IN} && systemctl daemon-reload"
        f" && echo stale > {APPLIED_MARKER}"
    )
    clocks = {name: host_clock(name) for name in HOSTS}

    output = run_playbook(OLLAMA_PLAYBOOK, {"ollama_version": "0.32.14"})

    # The JSON callback names role tasks "ROLE : TASK".
    changed_tasks = [
        task["task"]["name"].split(" : ", 1)[-1]
        for play in output["plays"]
        for task in play["tasks"]
        if task["hosts"].get(HOSTS[0], {}).get("changed")
    ]
    assert output["rc"] == 0, failure_messages(output)
    assert changed_counts(output)[HOSTS[1]] == 0
    assert service_starts_since(HOSTS[1], clocks[HOSTS[1]]) == 0
    assert DRIFT_TASK in changed_tasks
    assert set(changed_tasks) <= {DRIFT_TASK, *RESTART_HANDLERS}
    assert service_starts_since(HOSTS[0], clocks[HOSTS[0]]) == 1
    assert service_environment(HOSTS[0])["OLLAMA_KEEP_ALIVE"] == "5m"


def test_downgrade_settings_models_restart_once() -> None:
    clocks = {name: host_clock(name) for name in HOSTS}
    models = ["nomic-embed-text", "nomic-embed-text:v1.5", "all-minilm"]

    output = run_playbook(
        OLLAMA_PLAYBOOK,
        {
            "ollama_version": "0.13.5",
            "ollama_keep_alive": "10m",
            "ollama_num_parallel": 2,
            "ollama_max_queue": 64,
            "ollama_environment": {"OLLAMA_FLASH_ATTENTION": "1"},
            "ollama_models": models,
        },
    )

    assert output["rc"] == 0, failure_messages(output)
    digests = {}
    for name in HOSTS:
        environment = service_environment(name)
        listed = {
            entry["name"]: entry["digest"] for entry in api(name, "/api/tags")["models"]
        }
        assert api(name, "/api/version")["version"] == "0.13.5"
        assert service_starts_since(name, clocks[name]) == 1
        assert environment["OLLAMA_KEEP_ALIVE"] == "10m"
        assert environment["OLLAMA_NUM_PARALLEL"] == "2"
        assert environment["OLLAMA_MAX_QUEUE"] == "64"
        assert environment["OLLAMA_FLASH_ATTENTION"] == "1"
        assert set(listed) == {
            "nomic-embed-text:latest",
            "nomic-embed-text:v1.5",
            "all-minilm:latest",
        }
        digests[name] = listed
    assert digests[HOSTS[0]] == digests[HOSTS[1]]


# --- Another port, ollama_host as a URL, pruned models ----------------------


def test_port_change_cli_and_prune() -> None:
    output = run_playbook(
        OLLAMA_PLAYBOOK,
        {
            "ollama_port": 11435,
            "ollama_host": "http://0.0.0.0:11435",
            "ollama_models": ["nomic-embed-text"],
            "ollama_models_prune": True,
        },
    )

    assert output["rc"] == 0, failure_messages(output)
    for name in HOSTS:
        target = host(name)
        listing = target.run("bash -lc 'ollama list'")
        listed = [entry["name"] for entry in api(name, "/api/tags", 11435)["models"]]
        assert (
            "OLLAMA_HOST=http://127.0.0.1:11435"
            in target.file(PROFILE_SCRIPT).content_string
        )
        assert listing.rc == 0, listing.stderr
        assert "nomic-embed-text:latest" in listing.stdout
        assert listed == ["nomic-embed-text:latest"]


def test_typographic_quotes_rejected_before_change() -> None:
    before = {name: mtime(name, DROP_IN) for name in HOSTS}

    output = run_playbook(
        OLLAMA_PLAYBOOK, {"ollama_port": 11435, "ollama_host": "\u201c0.0.0.0\u201d"}
    )

    messages = " ".join(failure_messages(output))
    assert output["rc"] != 0
    assert "spaces or quotes" in messages
    assert "\u201c0.0.0.0\u201d" in messages
    for name in HOSTS:
        assert mtime(name, DROP_IN) == before[name]


# --- Rolling change that stops at a host that does not come back ------------


def test_roll_stops_at_failed_host() -> None:
    # Another process listens on the first host's port 11500, so Ollama cannot
    # bind it after the change and never responds again.
    first, second = host(HOSTS[0]), host(HOSTS[1])
    first.check_output(
        f"systemd-run --unit {PORT_HOLDER_UNIT} python3 -m http.server 11500"
    )
    second_drop_in = mtime(HOSTS[1], DROP_IN)

    output = run_playbook(
        OLLAMA_PLAYBOOK,
        {
            "ollama_rolling_batch": 1,
            "ollama_port": 11500,
            "ollama_models": ["nomic-embed-text"],
        },
    )

    first.run(f"systemctl stop {PORT_HOLDER_UNIT}")
    assert output["rc"] != 0
    assert any(HOSTS[0] in message for message in failure_messages(output))
    assert mtime(HOSTS[1], DROP_IN) == second_drop_in
    assert "OLLAMA_HOST=0.0.0.0:11435" in second.file(DROP_IN).content_string
    assert api(HOSTS[1], "/api/version", 11435)["version"] == "0.13.5"
