"""Settings of `ollama serve` and the CLI client, parsed as Ollama's envconfig does."""

import ipaddress
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger("ollama_emulator")

DEFAULT_PORT = 11434
DEFAULT_KEEP_ALIVE_SECONDS = 300.0
DEFAULT_NUM_PARALLEL = 1
DEFAULT_MAX_QUEUE = 512
DEFAULT_PULL_SECONDS = 0.2

# Go's time.ParseDuration units, in seconds.
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def read_variable(name: str) -> str:
    """Read an environment variable without surrounding spaces or quotes.

    Ollama strips both, so OLLAMA_HOST="'0.0.0.0'" means 0.0.0.0.
    """
    return os.environ.get(name, "").strip().strip("\"'")


def parse_go_duration(text: str) -> float:
    """Parse a Go duration string such as "5m", "1h30m" or "-1s" into seconds.

    Raises ValueError with Go's time.ParseDuration message on invalid text.
    """
    original = text
    sign = 1.0
    if text and text[0] in "+-":
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]

    if text == "0":
        return 0.0
    if not text:
        raise ValueError(f'time: invalid duration "{original}"')

    total = 0.0
    position = 0
    while position < len(text):
        match = _DURATION_PART.match(text, position)
        if match is None:
            if re.match(r"(\d+(?:\.\d*)?|\.\d+)$", text[position:]):
                raise ValueError(f'time: missing unit in duration "{original}"')
            raise ValueError(f'time: invalid duration "{original}"')
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()

    return sign * total


def keep_alive_from_json(value: object) -> float:
    """Convert a request's keep_alive (number of seconds or duration string).

    Returns seconds; math.inf means "keep loaded forever" (any negative value).
    Raises ValueError with Ollama's message for invalid values.
    """
    if isinstance(value, bool):
        raise ValueError("Unsupported type: 'bool'")

    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = parse_go_duration(value)
    else:
        raise ValueError(f"Unsupported type: '{type(value).__name__}'")

    return math.inf if seconds < 0 else seconds


def keep_alive_from_environment(text: str) -> float:
    """Parse OLLAMA_KEEP_ALIVE: a duration, else whole seconds, else the 5m default."""
    if not text:
        return DEFAULT_KEEP_ALIVE_SECONDS

    try:
        seconds = parse_go_duration(text)
    except ValueError:
        try:
            seconds = float(int(text))
        except ValueError:
            seconds = DEFAULT_KEEP_ALIVE_SECONDS

    return math.inf if seconds < 0 else seconds


def split_host_port(hostport: str) -> tuple[str, str]:
    """Split "host:port" or "[v6]:port" like Go's net.SplitHostPort.

    Raises ValueError when the text has no port or too many colons.
    """
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or not hostport[end + 1 :].startswith(":"):
            raise ValueError(f"missing port in address {hostport}")
        return hostport[1:end], hostport[end + 2 :]

    host, separator, port = hostport.rpartition(":")
    if not separator:
        raise ValueError(f"missing port in address {hostport}")
    if ":" in host:
        raise ValueError(f"too many colons in address {hostport}")
    return host, port


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostSetting:
    """OLLAMA_HOST after parsing: scheme, host (may be empty) and port."""

    scheme: str
    host: str
    port: int

    def connectable(self) -> "HostSetting":
        """Replace an unspecified bind address by loopback, for use as a destination."""
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        return HostSetting(self.scheme, host, self.port)

    def url(self) -> str:
        """Return the base URL, with brackets around an IPv6 address."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_ollama_host(text: str) -> HostSetting:
    """Parse OLLAMA_HOST as Ollama's envconfig.Host does.

    Accepted forms: HOST, HOST:PORT, :PORT, [IPv6]:PORT and SCHEME://HOST:PORT.
    A missing port means 11434, except after an explicit http:// (80) or
    https:// (443), as in Ollama. An empty HOST (":PORT") binds every interface.
    """
    default_port = str(DEFAULT_PORT)
    scheme, separator, hostport = text.partition("://")
    if not separator:
        scheme, hostport = "http", text
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"

    hostport = hostport.partition("/")[0]
    try:
        host, port_text = split_host_port(hostport)
    except ValueError:
        host, port_text = "127.0.0.1", default_port
        bare = hostport.strip("[]")
        if _is_ip_address(bare):
            host = bare
        elif hostport:
            host = hostport

    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        LOG.warning("invalid port %r in OLLAMA_HOST, using %s", port_text, default_port)
        port = int(default_port)

    return HostSetting(scheme, host, port)


def _read_count(name: str, default: int) -> int:
    text = read_variable(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        LOG.warning("invalid %s=%r, using the default %d", name, text, default)
        return default
    return value


def _read_seconds(name: str, default: float) -> float:
    text = read_variable(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < math.inf:
        LOG.warning("invalid %s=%r, using the default %s", name, text, default)
        return default
    return value


@dataclass(frozen=True)
class Settings:
    """Everything `ollama serve` reads from its environment."""

    host: HostSetting
    models_dir: Path
    keep_alive_seconds: float
    num_parallel: int
    max_queue: int
    embed_seconds: float
    embed_item_seconds: float
    embed_concurrency: int
    pull_seconds: float
    pull_failures: int

    def service_seconds(self, items: int) -> float:
        """Return the time one embed request of `items` input texts holds its slot."""
        return self.embed_seconds + self.embed_item_seconds * items

    @classmethod
    def from_environment(cls) -> "Settings":
        """Read the settings; an invalid number falls back to its default."""
        models = read_variable("OLLAMA_MODELS")
        models_dir = Path(models) if models else Path.home() / ".ollama" / "models"

        concurrency = _read_count("OLLAMA_EMULATOR_EMBED_CONCURRENCY", 1)
        if concurrency < 1:
            LOG.warning("OLLAMA_EMULATOR_EMBED_CONCURRENCY must be at least 1, using 1")
            concurrency = 1

        return cls(
            host=parse_ollama_host(read_variable("OLLAMA_HOST")),
            models_dir=models_dir,
            keep_alive_seconds=keep_alive_from_environment(
                read_variable("OLLAMA_KEEP_ALIVE")
            ),
            num_parallel=_read_count("OLLAMA_NUM_PARALLEL", DEFAULT_NUM_PARALLEL),
            max_queue=_read_count("OLLAMA_MAX_QUEUE", DEFAULT_MAX_QUEUE),
            embed_seconds=_read_seconds("OLLAMA_EMULATOR_EMBED_SECONDS", 0.0),
            embed_item_seconds=_read_seconds("OLLAMA_EMULATOR_EMBED_ITEM_SECONDS", 0.0),
            embed_concurrency=concurrency,
            pull_seconds=_read_seconds(
                "OLLAMA_EMULATOR_PULL_SECONDS", DEFAULT_PULL_SECONDS
            ),
            pull_failures=_read_count("OLLAMA_EMULATOR_PULL_FAILURES", 0),
        )
