"""lab/build-ollama-release: archive name, members, modes, checksums, rebuilds."""

import hashlib
import io
import subprocess
import tarfile

import httpx
import pytest
from local_processes import (
    emulator_environment,
    free_port,
    release_build_command,
    start_emulator,
    stop_process,
    unpack_release,
)


def _build(out_dir, version="0.32.14", arch="amd64"):
    return subprocess.run(
        release_build_command(version, out_dir, arch),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _members(archive_path):
    if archive_path.suffix == ".tgz":
        with tarfile.open(archive_path, "r:gz") as archive:
            return {member.name: member for member in archive.getmembers()}
    unpacked = subprocess.run(
        ["zstd", "-d", "-c", str(archive_path)], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(unpacked), mode="r:") as archive:
        return {member.name: member for member in archive.getmembers()}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("release")
    result = _build(out_dir)
    assert result.returncode == 0, result.stderr
    return out_dir


def test_release_archive_is_tar_zst(release):
    assert (release / "ollama-linux-amd64.tar.zst").is_file()


def test_release_members_are_bin_and_lib(release):
    members = _members(release / "ollama-linux-amd64.tar.zst")
    assert "./bin/ollama" in members
    assert "./lib/ollama/ollama_emulator/server.py" in members
    outside = [
        name
        for name in members
        if name != "." and not name.startswith(("./bin", "./lib"))
    ]
    assert outside == []
    assert not [name for name in members if "__pycache__" in name]


def test_release_binary_mode_0755(release):
    members = _members(release / "ollama-linux-amd64.tar.zst")
    assert members["./bin/ollama"].mode == 0o755
    assert members["./lib/ollama/ollama_emulator/cli.py"].mode == 0o644


def test_release_members_owned_by_root(release):
    members = _members(release / "ollama-linux-amd64.tar.zst")
    assert {(member.uid, member.gid) for member in members.values()} == {(0, 0)}
    assert {member.uname for member in members.values()} == {"root"}


def test_release_checksum_file_format(release):
    archive = release / "ollama-linux-amd64.tar.zst"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    text = (release / "sha256sum.txt").read_text()
    assert text == f"{digest}  ./ollama-linux-amd64.tar.zst\n"


def test_release_rebuild_is_identical(release, tmp_path):
    result = _build(tmp_path)
    assert result.returncode == 0
    first = (release / "ollama-linux-amd64.tar.zst").read_bytes()
    second = (tmp_path / "ollama-linux-amd64.tar.zst").read_bytes()
    assert first == second


def test_release_before_014_is_tgz(tmp_path):
    result = _build(tmp_path, version="0.13.5")
    assert result.returncode == 0
    archive = tmp_path / "ollama-linux-amd64.tgz"
    assert archive.is_file()
    assert "./bin/ollama" in _members(archive)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (tmp_path / "sha256sum.txt").read_text() == (
        f"{digest}  ./ollama-linux-amd64.tgz\n"
    )


def test_release_014_is_zst(tmp_path):
    assert _build(tmp_path, version="0.14.0").returncode == 0
    assert (tmp_path / "ollama-linux-amd64.tar.zst").is_file()


def test_release_checksums_keep_other_arch(tmp_path):
    _build(tmp_path, arch="amd64")
    _build(tmp_path, arch="arm64")
    names = [
        line.split()[1]
        for line in (tmp_path / "sha256sum.txt").read_text().splitlines()
    ]
    assert names == ["./ollama-linux-amd64.tar.zst", "./ollama-linux-arm64.tar.zst"]


def test_release_rejects_bad_version(tmp_path):
    result = _build(tmp_path, version="latest")
    assert result.returncode == 2
    assert "invalid version 'latest'" in result.stderr


def test_unpacked_release_prints_version(release, tmp_path):
    unpacked = tmp_path / "usr-local"
    binary = unpack_release(release / "ollama-linux-amd64.tar.zst", unpacked)
    environment = emulator_environment(
        tmp_path, {"OLLAMA_HOST": f"127.0.0.1:{free_port()}"}
    )

    result = subprocess.run(
        [str(binary), "--version"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.endswith("Warning: client version is 0.32.14\n")
    assert not list(unpacked.rglob("__pycache__"))


def test_unpacked_release_serves_baked_version(release, tmp_path):
    binary = unpack_release(
        release / "ollama-linux-amd64.tar.zst", tmp_path / "usr-local"
    )

    # The binary runs by its own shebang line, as systemd starts it.
    base_url, process = start_emulator(tmp_path, command=[str(binary)])
    try:
        response = httpx.get(f"{base_url}/api/version", timeout=5)
    finally:
        stop_process(process)
    assert response.json() == {"version": "0.32.14"}
