"""Checks that port 11434 is open to the Docker host and to nobody else.

The scenario's GPU hosts run ufw (firewall-gpu-ufw, chosen by
firewall_backend=auto) and firewalld (firewall-gpu-firewalld). Each test opens
its own podman:// connections and runs ansible-playbook against molecule's
inventory where a test needs the roles again.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import testinfra

REPO = Path(__file__).resolve().parents[3]
SCENARIO = REPO / "molecule" / "firewall"
UFW_HOST = "firewall-gpu-ufw"
FIREWALLD_HOST = "firewall-gpu-firewalld"
GPU_HOSTS = [UFW_HOST, FIREWALLD_HOST]
OUTSIDER = "firewall-outsider"
NETWORK = "ollama-fleet-firewall"
PORT = 11434
CONSUMERS_DIR = Path("/var/lib/ollama-fleet-lab/firewall-consumers")
DROP_IN = "/etc/systemd/system/ollama.service.d/override.conf"
# Documentation addresses (RFC 5737, RFC 3849): they only appear in rules, and no
# traffic is sent to them.
STALE_IPV4 = "192.0.2.99"
EXTRA_IPV6 = "2001:db8:11::/64"
# curl exit codes: 7 = connection refused (firewalld rejects), 28 = timed out
# (ufw drops). 0 would mean the port is open.
REJECTED_OR_DROPPED = (7, 28)


def container_address(name: str) -> str:
    """Read a scenario container's address on the scenario network from podman."""
    template = f'{{{{ (index .NetworkSettings.Networks "{NETWORK}").IPAddress }}}}'
    result = subprocess.run(
        ["podman", "inspect", "--format", template, name],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def network_gateway() -> str:
    """Read the scenario network's gateway, the Docker host's source address."""
    result = subprocess.run(
        ["podman", "network", "inspect", NETWORK],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout)[0]["subnets"][0]["gateway"]


def host(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{name}")


def run_playbook(
    playbook: Path, extra_vars: dict[str, object] | None = None, *options: str
) -> subprocess.CompletedProcess[str]:
    """Run a playbook against molecule's inventory with the project's settings."""
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    command = ["ansible-playbook", "-i", str(inventory), str(playbook), *options]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    # Molecule forces colour, which would put escape codes into the PLAY RECAP.
    environment = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="false",
        ANSIBLE_NOCOLOR="true",
    )
    return subprocess.run(
        command,
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def recap_changed(output: str) -> dict[str, int]:
    """Return the changed= count of each host in the PLAY RECAP."""
    return {
        match.group(1): int(match.group(2))
        for match in re.finditer(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", output, re.M)
    }


def probe_from_outsider(address: str) -> int:
    probe = host(OUTSIDER).run(f"curl -sS -m 3 -o /dev/null http://{address}:{PORT}/")
    return probe.rc


def firewalld_rich_rules(permanent: bool) -> list[str]:
    option = "--permanent " if permanent else ""
    output = host(FIREWALLD_HOST).check_output(
        f"firewall-cmd {option}--list-rich-rules"
    )
    return output.splitlines()


def expected_rich_rule(source: str) -> str:
    family = "ipv6" if ":" in source else "ipv4"
    return (
        f'rule family="{family}" source address="{source}" '
        f'port port="{PORT}" protocol="tcp" accept'
    )


def wait_until_served(name: str) -> None:
    """Wait until a restarted host has booted and its Ollama answers the Docker host."""
    host(name).run("systemctl is-system-running --wait")
    deadline = time.monotonic() + 120
    while True:
        try:
            response = httpx.get(f"http://{container_address(name)}:{PORT}/", timeout=3)
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{name}: Ollama did not answer within 120 s of the restart")
        time.sleep(2)


def assert_exposure_limited() -> None:
    for name in GPU_HOSTS:
        address = container_address(name)
        response = httpx.get(f"http://{address}:{PORT}/", timeout=5)
        assert response.status_code == 200, name
        assert response.text == "Ollama is running", name

        rc = probe_from_outsider(address)
        assert rc in REJECTED_OR_DROPPED, f"{OUTSIDER} reached {name}: curl rc={rc}"


def test_auto_backend_chose_ufw() -> None:
    gpu = host(UFW_HOST)
    status = gpu.check_output("ufw status")
    assert "Status: active" in status
    assert re.search(
        rf"^{PORT}/tcp\s+ALLOW\s+{re.escape(network_gateway())}\b", status, re.M
    )
    assert not gpu.service("firewalld").is_running


def test_firewalld_backend_rules() -> None:
    gpu = host(FIREWALLD_HOST)
    assert gpu.check_output("firewall-cmd --state") == "running"
    assert gpu.service("firewalld").is_enabled
    assert "Status: inactive" in gpu.check_output("ufw status")

    rule = expected_rich_rule(network_gateway())
    assert firewalld_rich_rules(permanent=True) == [rule]
    assert firewalld_rich_rules(permanent=False) == [rule]


def test_firewalld_zone_faces_docker_host() -> None:
    gpu = host(FIREWALLD_HOST)
    # No zone claims eth0 in the lab image, so the default zone filters it.
    default_zone = gpu.check_output("firewall-cmd --get-default-zone")
    zone_rules = gpu.check_output(
        f"firewall-cmd --zone={default_zone} --list-rich-rules"
    )
    assert expected_rich_rule(network_gateway()) in zone_rules.splitlines()


def test_docker_host_in_outsider_out() -> None:
    assert_exposure_limited()


def test_firewalld_rejects_and_ufw_drops() -> None:
    assert probe_from_outsider(container_address(FIREWALLD_HOST)) == 7
    assert probe_from_outsider(container_address(UFW_HOST)) == 28


@pytest.fixture
def restore_firewall_rules() -> Iterator[dict[str, bool]]:
    """Apply the firewall role with the scenario's own sources after a failed test.

    The test sets "restored" once its last run has put the scenario's rules back.
    """
    state = {"restored": False}
    yield state
    if not state["restored"]:
        restored = run_playbook(SCENARIO / "firewall.yml")
        assert restored.returncode == 0, restored.stdout + restored.stderr


def test_rules_follow_inventory_sources(
    restore_firewall_rules: dict[str, bool],
) -> None:
    firewall_playbook = SCENARIO / "firewall.yml"
    ufw_gpu = host(UFW_HOST)
    firewalld_gpu = host(FIREWALLD_HOST)
    stale_rule = expected_rich_rule(STALE_IPV4)

    # Rules the inventory does not list: an old consumer address and the port
    # opened to every source.
    ufw_gpu.check_output(f"ufw allow from {STALE_IPV4} to any port {PORT} proto tcp")
    ufw_gpu.check_output(f"ufw allow {PORT}/tcp")
    for option in ("--permanent ", ""):
        firewalld_gpu.check_output(
            f"firewall-cmd {option}--add-rich-rule='{stale_rule}'"
        )
        firewalld_gpu.check_output(f"firewall-cmd {option}--add-port={PORT}/tcp")

    added = run_playbook(firewall_playbook, {"firewall_extra_sources": [EXTRA_IPV6]})
    assert added.returncode == 0, added.stdout + added.stderr

    ufw_status = ufw_gpu.check_output("ufw status")
    assert STALE_IPV4 not in ufw_status
    assert not re.search(rf"^{PORT}/tcp\s+ALLOW\s+Anywhere", ufw_status, re.M)
    assert re.search(
        rf"^{PORT}/tcp\s+ALLOW\s+{re.escape(EXTRA_IPV6)}", ufw_status, re.M
    )

    expected = {expected_rich_rule(network_gateway()), expected_rich_rule(EXTRA_IPV6)}
    for permanent in (True, False):
        assert set(firewalld_rich_rules(permanent)) == expected
        option = "--permanent " if permanent else ""
        ports = firewalld_gpu.check_output(f"firewall-cmd {option}--list-ports")
        assert f"{PORT}/tcp" not in ports.split()

    # The IPv6 source leaves the inventory again: its rules must go.
    removed = run_playbook(firewall_playbook)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert EXTRA_IPV6 not in ufw_gpu.check_output("ufw status")
    for permanent in (True, False):
        assert firewalld_rich_rules(permanent) == [
            expected_rich_rule(network_gateway())
        ]

    again = run_playbook(firewall_playbook)
    assert again.returncode == 0, again.stdout + again.stderr
    changed = recap_changed(again.stdout)
    assert changed[UFW_HOST] == 0, again.stdout
    assert changed[FIREWALLD_HOST] == 0, again.stdout
    restore_firewall_rules["restored"] = True


def test_exposure_holds_after_restart() -> None:
    subprocess.run(["podman", "restart", *GPU_HOSTS, OUTSIDER], check=True, timeout=120)
    host(OUTSIDER).run("systemctl is-system-running --wait")
    for name in GPU_HOSTS:
        wait_until_served(name)

    assert_exposure_limited()
    assert "Status: active" in host(UFW_HOST).check_output("ufw status")
    assert firewalld_rich_rules(permanent=False) == [
        expected_rich_rule(network_gateway())
    ]


def test_guard_fails_without_firewall() -> None:
    run = run_playbook(
        SCENARIO / "guard.yml", {"guard_tasks_from": "main", "firewall_backend": "none"}
    )
    output = run.stdout + run.stderr

    assert run.returncode != 0, output
    assert f"{OUTSIDER}: OLLAMA_HOST 0.0.0.0:11434 would expose" in output
    assert "firewall_backend" in output
    assert "ollama_allow_unfirewalled: true" in output
    # The guard runs before anything is installed or the drop-in is written.
    outsider = host(OUTSIDER)
    assert not outsider.file(DROP_IN).exists
    assert not outsider.file("/usr/local/bin/ollama").exists


def test_guard_reads_ollama_host() -> None:
    """A wildcard in ollama_host is caught even when ollama_bind_address is loopback."""
    run = run_playbook(
        SCENARIO / "guard.yml",
        {
            "guard_tasks_from": "exposure_guard",
            "firewall_backend": "none",
            "ollama_bind_address": "127.0.0.1",
            "ollama_host": "0.0.0.0",
        },
    )
    output = run.stdout + run.stderr

    assert run.returncode != 0, output
    assert f"{OUTSIDER}: OLLAMA_HOST 0.0.0.0:11434 would expose" in output


def test_guard_passes_with_opt_out() -> None:
    run = run_playbook(
        SCENARIO / "guard.yml",
        {"guard_tasks_from": "exposure_guard", "ollama_allow_unfirewalled": True},
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_guard_passes_loopback_bind() -> None:
    run = run_playbook(
        SCENARIO / "guard.yml",
        {"guard_tasks_from": "exposure_guard", "ollama_bind_address": "127.0.0.1"},
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.fixture
def docker_proxy_double() -> Iterator[None]:
    """Run a TEST DOUBLE of docker-proxy on the outsider, listening on port 11434.

    It is python3's http.server started through a symlink named docker-proxy, so
    `ss -p` reports the process name Docker's userland proxy has when a container
    publishes the port. No Docker runs on the host.
    """
    outsider = host(OUTSIDER)
    double_dir = "/usr/local/lib/ollama-fleet-test-double"
    unit = "ollama-fleet-test-double-docker-proxy"
    outsider.check_output(
        f"mkdir -p {double_dir} && ln -sf /usr/bin/python3 {double_dir}/docker-proxy"
    )
    outsider.check_output(
        f"systemd-run --unit={unit} {double_dir}/docker-proxy -m http.server {PORT}"
    )
    try:
        deadline = time.monotonic() + 30
        while not outsider.socket(f"tcp://0.0.0.0:{PORT}").is_listening:
            if time.monotonic() > deadline:
                pytest.fail("the docker-proxy test double did not start listening")
            time.sleep(0.5)
        yield
    finally:
        outsider.run(f"systemctl stop {unit}")
        outsider.run(f"rm -rf {double_dir}")


def test_guard_detects_published_container_port(docker_proxy_double: None) -> None:
    # The opt-out skips the firewall check, so only the container check can fail.
    run = run_playbook(
        SCENARIO / "guard.yml",
        {"guard_tasks_from": "exposure_guard", "ollama_allow_unfirewalled": True},
    )
    output = run.stdout + run.stderr

    assert run.returncode != 0, output
    assert f"{OUTSIDER}: port {PORT} is published by a container" in output
    assert "listener docker-proxy" in output
    assert "bypass ufw and firewalld" in output


def test_secrets_absent_from_verbose_output() -> None:
    password = f"planted-password-{secrets.token_hex(8)}"
    token = f"planted-token-{secrets.token_hex(8)}"
    run = run_playbook(
        REPO / "playbooks" / "consumers.yml",
        {
            "kafka_sasl_username": "fleet-consumer",
            "kafka_sasl_password": password,
            "consumers_extra_env_secret": {"INGEST_API_TOKEN": token},
        },
        "-v",
        "--diff",
    )
    output = run.stdout + run.stderr

    assert run.returncode == 0, output
    assert password not in output
    assert token not in output

    # The secrets did reach the file, which only root may read.
    env_file = CONSUMERS_DIR / ".env"
    content = env_file.read_text()
    assert password in content
    assert token in content
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
