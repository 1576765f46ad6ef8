"""The `ollama` command line: serve, pull, list, rm and --version."""

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime

from . import read_version
from .config import Settings, parse_ollama_host, read_variable

USAGE = """\
Large language model runner (Ollama emulator for the ollama-fleet lab)

Usage:
  ollama [flags]
  ollama [command]

Available Commands:
  serve       Start ollama
  pull        Pull a model from a registry
  list        List models
  rm          Remove a model

Flags:
  -h, --help      help for ollama
  -v, --version   Show version information

Environment:
  OLLAMA_HOST     Server address for serve and for the client (default 127.0.0.1:11434)
  OLLAMA_MODELS   Models folder of serve (default ~/.ollama/models)
"""

# Seconds the client waits for the server on short requests and between the
# lines of a pull stream.
REQUEST_TIMEOUT_SECONDS = 10.0
PULL_READ_TIMEOUT_SECONDS = 300.0

CONNECT_ERROR = "could not connect to ollama server, run 'ollama serve' to start it"


class ClientError(RuntimeError):
    """A client command failed; the message is printed after "Error: "."""


def server_url() -> str:
    """Return the server URL from OLLAMA_HOST, with 0.0.0.0 or :: made loopback."""
    return parse_ollama_host(read_variable("OLLAMA_HOST")).connectable().url()


def _request(
    method: str, path: str, document: object | None, timeout: float
) -> urllib.request.addinfourl:
    data = None if document is None else json.dumps(document).encode()
    request = urllib.request.Request(
        server_url() + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        raise ClientError(_error_text(error.read(), error.code)) from None
    except (urllib.error.URLError, OSError):
        raise ClientError(CONNECT_ERROR) from None


def _error_text(body: bytes, status: int) -> str:
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return f"unexpected status {status}: {body.decode(errors='replace').strip()}"


def _read_json(path: str) -> dict:
    with _request("GET", path, None, REQUEST_TIMEOUT_SECONDS) as response:
        return json.loads(response.read())


def human_bytes(size: int) -> str:
    """Format a byte count with decimal units as Ollama's format.HumanBytes does."""
    for unit, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if size >= factor:
            value = size / factor
            if value >= 10 or value == int(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{size} B"


def human_age(seconds: float) -> str:
    """Describe how long ago something happened, as `ollama list` does."""
    if seconds < 1:
        return "Less than a second ago"
    if seconds < 60:
        count = int(seconds)
        return "1 second ago" if count == 1 else f"{count} seconds ago"
    if seconds < 3600:
        count = int(seconds // 60)
        return "About a minute ago" if count == 1 else f"{count} minutes ago"
    if seconds < 86400:
        count = int(seconds // 3600)
        return "About an hour ago" if count == 1 else f"{count} hours ago"
    count = int(seconds // 86400)
    return "1 day ago" if count == 1 else f"{count} days ago"


def _parse_go_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_version() -> int:
    """Print the server's version and warn when it differs from this client's."""
    client_version = read_version()
    server_version = ""
    try:
        server_version = str(_read_json("/api/version").get("version", ""))
    except ClientError:
        print("Warning: could not connect to a running Ollama instance")

    if server_version:
        print(f"ollama version is {server_version}")
    if server_version != client_version:
        print(f"Warning: client version is {client_version}")
    return 0


def _stream_lines(response: urllib.request.addinfourl) -> Iterator[dict]:
    for line in response:
        if line.strip():
            yield json.loads(line)


def run_pull(model: str, insecure: bool) -> int:
    """Pull a model through the server, printing each new status to stderr."""
    document = {"model": model, "insecure": insecure, "stream": True}
    last_status = ""
    with _request("POST", "/api/pull", document, PULL_READ_TIMEOUT_SECONDS) as response:
        for event in _stream_lines(response):
            if "error" in event:
                raise ClientError(str(event["error"]))
            status = str(event.get("status", ""))
            if status != last_status:
                print(status, file=sys.stderr, flush=True)
                last_status = status
    return 0


def run_list() -> int:
    """Print the pulled models as a table."""
    rows = [("NAME", "ID", "SIZE", "MODIFIED")]
    now = time.time()
    for model in _read_json("/api/tags").get("models", []):
        age = now - _parse_go_time(model["modified_at"])
        rows.append(
            (
                model["name"],
                model["digest"][:12],
                human_bytes(int(model["size"])),
                human_age(age),
            )
        )

    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        padded = [
            cell.ljust(width + 4)
            for cell, width in zip(row, widths[:3] + [0], strict=True)
        ]
        print("".join(padded).rstrip())
    return 0


def run_remove(models: list[str]) -> int:
    """Delete models through the server."""
    for model in models:
        with _request(
            "DELETE", "/api/delete", {"model": model}, REQUEST_TIMEOUT_SECONDS
        ):
            pass
        print(f"deleted '{model}'")
    return 0


def _dispatch(arguments: list[str]) -> int:
    if not arguments or arguments[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0

    command, rest = arguments[0], arguments[1:]
    if command in ("-v", "--version"):
        return run_version()

    if command == "serve":
        from .server import serve

        return serve(Settings.from_environment(), read_version())

    if command == "pull":
        names = [argument for argument in rest if not argument.startswith("-")]
        if len(names) != 1:
            raise ClientError(f"accepts 1 arg(s), received {len(names)}")
        return run_pull(names[0], "--insecure" in rest)

    if command in ("list", "ls"):
        return run_list()

    if command == "rm":
        if not rest:
            raise ClientError("requires at least 1 arg(s), only received 0")
        return run_remove(rest)

    raise ClientError(f'unknown command "{command}" for "ollama"')


def main(arguments: list[str]) -> int:
    """Run one command; print "Error: ..." to stderr and return 1 on failure."""
    try:
        return _dispatch(arguments)
    except ClientError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
