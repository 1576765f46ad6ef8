# Copyright: contributors to ollama-fleet
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client pieces for the Ollama REST API, shared by the ollama_* modules.

The functions here raise OllamaError subclasses and never call fail_json, so the
modules decide how to report a failure and the tests can call them directly.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

try:
    import httpx

    HAS_HTTPX = True
    HTTPX_IMPORT_ERROR: str | None = None
except ImportError as import_error:
    HAS_HTTPX = False
    HTTPX_IMPORT_ERROR = str(import_error)

DEFAULT_URL = "http://127.0.0.1:11434"
DEFAULT_TAG = "latest"

# Ollama's defaults for a name that leaves out the registry or the namespace,
# as in "nomic-embed-text" == "registry.ollama.ai/library/nomic-embed-text:latest".
DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"

_VERSION_PATTERN = re.compile(
    r"^v?(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?"
    r"(?:-(?P<prerelease>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


class OllamaError(Exception):
    """Base class of the errors raised by this module."""


class OllamaUnreachableError(OllamaError):
    """No HTTP response: connection refused, DNS failure or a timeout."""


class OllamaHTTPError(OllamaError):
    """An HTTP error status, with the text of the server's {"error": ...} body."""

    def __init__(self, method: str, url: str, status_code: int, error: str) -> None:
        self.method = method
        self.url = url
        self.status_code = status_code
        self.error = error
        super().__init__(f"{method} {url} returned HTTP {status_code}: {error}")


class OllamaPullError(OllamaError):
    """A pull that failed, either inside the stream or by ending without success."""

    def __init__(self, model: str, error: str, retryable: bool) -> None:
        self.model = model
        self.error = error
        self.retryable = retryable
        super().__init__(f"pulling {model} failed: {error}")


class EmbeddingCheckError(OllamaError):
    """An embedding response that is empty, has the wrong length or bad values."""


class InvalidEndpointError(ValueError):
    """An endpoint URL that a client cannot use as a destination."""


# Model names


def _split_tag(name: str) -> tuple[str, str | None]:
    """Split "repo:tag" into its parts, ignoring a colon that belongs to a host port.

    The tag is None when the name has none and "" when it ends in a colon.
    """
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        return name[:colon], name[colon + 1 :]

    return name, None


def normalize_model_name(name: str) -> str:
    """Return the name as /api/tags lists it: with a tag, without default parts.

    "nomic-embed-text" becomes "nomic-embed-text:latest", and
    "registry.ollama.ai/library/all-minilm:v2" becomes "all-minilm:v2". A name in
    another namespace or on another registry keeps those parts. Raises ValueError
    for an empty name or an empty part.
    """
    stripped = name.strip()
    if not stripped:
        raise ValueError("model name is empty")

    if "@" in stripped:
        raise ValueError(
            f"model name {name!r} contains a digest (@...); name the model by tag"
        )

    repository, tag = _split_tag(stripped)
    parts = repository.split("/")
    if any(not part for part in parts) or tag == "":
        raise ValueError(f"model name {name!r} has an empty part")

    if len(parts) == 3 and parts[0].lower() == DEFAULT_REGISTRY:
        parts = parts[1:]

    if len(parts) == 2 and parts[0].lower() == DEFAULT_NAMESPACE:
        parts = parts[1:]

    return "/".join(parts) + ":" + (tag or DEFAULT_TAG)


def model_key(name: str) -> str:
    """Return the key under which two spellings of one model compare equal.

    Ollama compares model names without regard to case.
    """
    return normalize_model_name(name).lower()


def find_model(models: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """Return the /api/tags entry for the model, or None when it is not listed."""
    requested_key = model_key(name)
    for entry in models:
        listed = entry.get("name") or entry.get("model") or ""
        try:
            if model_key(listed) == requested_key:
                return entry
        except ValueError:
            continue

    return None


# Versions


def parse_version(text: str) -> tuple[int, int, int, tuple[int | str, ...] | None]:
    """Parse an Ollama version such as "0.1.34", "0.32.14" or "0.33.0-rc2".

    Returns (major, minor, patch, prerelease), where prerelease is None for a
    release and a tuple of its dot-separated parts otherwise. Build metadata after
    "+" is ignored. Raises ValueError for text that is not a version.
    """
    match = _VERSION_PATTERN.match(text.strip())
    if match is None:
        raise ValueError(f"invalid version {text!r}; expected a form like 0.1.34")

    prerelease_text = match.group("prerelease")
    prerelease: tuple[int | str, ...] | None = None
    if prerelease_text is not None:
        prerelease = tuple(
            int(part) if part.isdigit() else part
            for part in re.split(r"[.-]", prerelease_text)
        )

    return (
        int(match.group("major")),
        int(match.group("minor")),
        int(match.group("patch") or 0),
        prerelease,
    )


def _prerelease_sort_key(
    prerelease: tuple[int | str, ...] | None,
) -> tuple[int, tuple[tuple[int, Any, int], ...]]:
    """Order prereleases as semantic versioning does: any prerelease < the release.

    Within a prerelease, numeric parts sort below text parts and compare as numbers.
    A text part that ends in digits ("rc10") compares by its letters and then by
    that number, so "rc2" sorts below "rc10".
    """
    if prerelease is None:
        return (1, ())

    keys: list[tuple[int, Any, int]] = []
    for part in prerelease:
        if isinstance(part, int):
            keys.append((0, part, 0))
            continue

        split = re.match(r"^(.*?)(\d+)$", part)
        if split is None:
            keys.append((1, part, -1))
        else:
            keys.append((1, split.group(1), int(split.group(2))))

    return (0, tuple(keys))


def version_sort_key(text: str) -> tuple[Any, ...]:
    """Return a key that sorts version strings in release order."""
    major, minor, patch, prerelease = parse_version(text)
    return (major, minor, patch, _prerelease_sort_key(prerelease))


def compare_versions(left: str, right: str) -> int:
    """Return -1, 0 or 1 as the left version is older than, equal to or newer."""
    left_key = version_sort_key(left)
    right_key = version_sort_key(right)
    return (left_key > right_key) - (left_key < right_key)


def version_at_least(actual: str, minimum: str) -> bool:
    """Return whether the actual version is the minimum or newer.

    A prerelease of the minimum ("0.33.0-rc2" against "0.33.0") is older.
    """
    return compare_versions(actual, minimum) >= 0


# Endpoints and HTTP settings

# The `endpoints` option of the modules that check several Ollama servers, as an
# AnsibleModule argument spec. validate_endpoints() checks its value.
ENDPOINTS_ARGUMENT_SPEC: dict[str, Any] = {
    "type": "list",
    "elements": "dict",
    "required": True,
    "options": {
        "name": {"type": "str", "required": True},
        "url": {"type": "str", "required": True},
    },
}


def validate_endpoint_url(url: str, name: str = "") -> str:
    """Return the URL without a trailing slash, or raise InvalidEndpointError.

    The URL must be http or https with a host. An unspecified address (0.0.0.0 or
    ::) is rejected because it only makes sense as a bind address: a client that
    dials it reaches its own machine, not the Ollama host.
    """
    label = f"endpoint {name}" if name else "url"
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise InvalidEndpointError(
            f"{label}: invalid URL {url!r}; the scheme must be http or https, "
            "as in http://gpu-1.example:11434"
        )

    host = parts.hostname
    if not host:
        raise InvalidEndpointError(f"{label}: URL {url!r} has no host name")

    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None

    if address is not None and address.is_unspecified:
        raise InvalidEndpointError(
            f"{label}: URL {url!r} uses {host}, which is a bind address, not a "
            "destination; use the host's reachable address (for example its "
            "ollama_advertise_address)"
        )

    try:
        port = parts.port
    except ValueError as error:
        raise InvalidEndpointError(
            f"{label}: URL {url!r} has an invalid port"
        ) from error

    if port == 0:
        raise InvalidEndpointError(f"{label}: URL {url!r} has port 0")

    return url.strip().rstrip("/")


def validate_endpoints(endpoints: list[dict[str, str]]) -> list[dict[str, str]]:
    """Validate the `endpoints` option and return it with stripped names.

    Each URL is returned as validate_endpoint_url() normalises it. Raises
    ValueError for an empty list, an empty name or a name given twice, and
    InvalidEndpointError (a ValueError) for a URL that validate_endpoint_url()
    rejects. Results are keyed by name, so a repeated name would hide one
    endpoint's result behind the other's.
    """
    if not endpoints:
        raise ValueError("endpoints must list at least one endpoint")

    normalized: list[dict[str, str]] = []
    urls_by_name: dict[str, str] = {}
    for endpoint in endpoints:
        name = endpoint["name"].strip()
        if not name:
            raise ValueError(f"endpoint with url {endpoint['url']!r} has an empty name")
        if name in urls_by_name:
            raise ValueError(
                f"endpoint name {name!r} is given twice (urls {urls_by_name[name]!r} "
                f"and {endpoint['url']!r}); give every endpoint its own name"
            )
        urls_by_name[name] = endpoint["url"]
        url = validate_endpoint_url(endpoint["url"], name=name)
        normalized.append({"name": name, "url": url})

    return normalized


def build_timeout(
    connect_seconds: float,
    read_seconds: float,
    write_seconds: float | None = None,
    pool_seconds: float | None = None,
) -> httpx.Timeout:
    """Build an httpx.Timeout from values in seconds.

    The write timeout defaults to the read timeout, and the pool timeout (the time
    a request waits for a free connection) to the connect timeout.
    """
    return httpx.Timeout(
        connect=connect_seconds,
        read=read_seconds,
        write=read_seconds if write_seconds is None else write_seconds,
        pool=connect_seconds if pool_seconds is None else pool_seconds,
    )


def build_limits(concurrency: int) -> httpx.Limits:
    """Build httpx connection limits that allow one connection per worker."""
    return httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency
    )


def describe_transport_error(
    error: httpx.TransportError, timeout: httpx.Timeout
) -> str:
    """Return a short cause for a failed request, such as "connection refused"."""
    if isinstance(error, httpx.ConnectTimeout):
        return f"connection timed out after {timeout.connect} s"

    if isinstance(error, httpx.ReadTimeout):
        return f"no response within the read timeout of {timeout.read} s"

    if isinstance(error, httpx.WriteTimeout):
        return f"sending the request timed out after {timeout.write} s"

    if isinstance(error, httpx.PoolTimeout):
        return f"no free connection within {timeout.pool} s"

    text = str(error) or type(error).__name__
    if isinstance(error, httpx.ConnectError):
        if "refused" in text.lower():
            return "connection refused"
        return f"connection failed: {text}"

    return text


def error_text_from_response(response: httpx.Response) -> str:
    """Return the error text of a failed response.

    Ollama sends errors as {"error": "..."}. Any other body is returned as text,
    shortened, so a proxy's HTML page does not flood the message.
    """
    try:
        body = response.json()
    except ValueError:
        body = None

    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]

    text = response.text.strip()
    if not text:
        return response.reason_phrase or "no error text"

    return text if len(text) <= 200 else text[:200] + "..."


# Embeddings


def check_embedding(vector: Any, dimensions: int | None) -> int:
    """Check one embedding vector and return its length.

    Raises EmbeddingCheckError when the vector is not a list, is empty, has a length
    other than `dimensions` (when given) or contains a value that is not a finite
    number. An empty vector is what Ollama returns when a request sends `prompt` to
    /api/embed or `input` to /api/embeddings, so it never counts as a success.
    """
    if not isinstance(vector, list):
        raise EmbeddingCheckError(
            f"embedding is a {type(vector).__name__}, not a list of numbers"
        )

    if not vector:
        raise EmbeddingCheckError("embedding is an empty vector")

    if dimensions is not None and len(vector) != dimensions:
        raise EmbeddingCheckError(
            f"embedding has {len(vector)} dimensions, expected {dimensions}"
        )

    for index, value in enumerate(vector):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EmbeddingCheckError(
                f"embedding value at index {index} is {value!r}, not a number"
            )

        if not math.isfinite(value):
            raise EmbeddingCheckError(
                f"embedding value at index {index} is {value!r}, not a finite number"
            )

    return len(vector)


# Pull stream

# Pull errors that a retry cannot fix: the registry has no such model, or the
# name is malformed. Any other error (network, disk, registry 5xx) is retried.
# NOTE: matched on Ollama's error text, which is not a stable interface.
_PERMANENT_PULL_ERRORS = (
    "file does not exist",
    "invalid model name",
    "not found",
)


def is_permanent_pull_error(error: str) -> bool:
    """Return whether a pull error names a problem that a retry cannot fix."""
    lowered = error.lower()
    return any(pattern in lowered for pattern in _PERMANENT_PULL_ERRORS)


def read_pull_stream(
    model: str,
    lines: Iterator[str],
    deadline: float | None = None,
    on_status: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Consume the JSON lines of a /api/pull stream and return the last status.

    Raises OllamaPullError for an {"error": ...} line, for a line that is not JSON,
    when the stream ends before a "success" status, or when the monotonic clock
    passes `deadline`.
    """
    last_status: dict[str, Any] = {}
    for line in lines:
        if deadline is not None and time.monotonic() > deadline:
            raise OllamaPullError(
                model,
                f"pull timeout exceeded; last status was {last_status.get('status')!r}",
                retryable=False,
            )

        if not line.strip():
            continue

        try:
            status = json.loads(line)
        except ValueError as error:
            raise OllamaPullError(
                model,
                f"invalid line in the pull stream: {line[:200]!r}",
                retryable=True,
            ) from error

        if not isinstance(status, dict):
            raise OllamaPullError(
                model,
                f"invalid line in the pull stream: {line[:200]!r}",
                retryable=True,
            )

        if "error" in status:
            error_text = str(status["error"])
            raise OllamaPullError(
                model, error_text, retryable=not is_permanent_pull_error(error_text)
            )

        last_status = status
        if on_status is not None:
            on_status(status)

        if status.get("status") == "success":
            return status

    raise OllamaPullError(
        model,
        f"the pull stream ended before success; last status was "
        f"{last_status.get('status')!r}",
        retryable=True,
    )


# Client


class OllamaClient:
    """A small synchronous client for one Ollama server.

    Every request uses the httpx.Timeout given here, except where a method's
    documentation names another.
    The client is safe to share between threads because httpx.Client is. Leaving a
    `with OllamaClient(...)` block closes its connections, as close() does.
    """

    def __init__(
        self,
        base_url: str,
        timeout: httpx.Timeout,
        limits: httpx.Limits | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # trust_env=False ignores HTTP_PROXY and friends: the Ollama servers are on
        # the fleet's own network, and a proxy would hide which host failed.
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            limits=limits or build_limits(1),
            follow_redirects=False,
            trust_env=False,
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def __enter__(self) -> OllamaClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        json_body: dict[str, Any] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """Send one request and raise an OllamaError for any failure."""
        effective_timeout = timeout or self.timeout
        url = self.base_url + path
        try:
            response = self._client.request(
                method, path, json=json_body, timeout=effective_timeout
            )
        except httpx.TransportError as error:
            raise OllamaUnreachableError(
                f"{method} {url} failed: "
                f"{describe_transport_error(error, effective_timeout)}"
            ) from error

        if response.status_code >= 400:
            raise OllamaHTTPError(
                method, url, response.status_code, error_text_from_response(response)
            )

        return response

    def _request_json(
        self,
        method: str,
        path: str,
        json_body: dict[str, Any] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> dict[str, Any]:
        """Send one request and return its JSON object body."""
        response = self._request(method, path, json_body, timeout)
        try:
            body = response.json()
        except ValueError as error:
            raise OllamaError(
                f"{method} {self.base_url}{path} returned a body that is not JSON: "
                f"{response.text[:200]!r}"
            ) from error

        if not isinstance(body, dict):
            raise OllamaError(
                f"{method} {self.base_url}{path} returned JSON that is not an object"
            )

        return body

    def ping(self) -> str:
        """Send GET / and return the body text ("Ollama is running")."""
        return self._request("GET", "/").text.strip()

    def version(self) -> str:
        """Return the server version from /api/version."""
        body = self._request_json("GET", "/api/version")
        version = body.get("version")
        if not isinstance(version, str) or not version:
            raise OllamaError(
                f"{self.base_url}/api/version returned no version: {body}"
            )

        return version

    def list_models(self) -> list[dict[str, Any]]:
        """Return the "models" list of /api/tags."""
        body = self._request_json("GET", "/api/tags")
        models = body.get("models") or []
        if not isinstance(models, list):
            raise OllamaError(
                f"{self.base_url}/api/tags returned an invalid models list"
            )

        return [entry for entry in models if isinstance(entry, dict)]

    def iter_pull_lines(self, model: str, idle_timeout: float) -> Iterator[str]:
        """Start a streamed pull and yield its lines.

        `idle_timeout` is the httpx read timeout in seconds, which bounds the wait
        for each chunk rather than the whole download, so a slow but moving pull
        continues and a stalled one fails.
        """
        timeout = httpx.Timeout(
            connect=self.timeout.connect,
            read=idle_timeout,
            write=self.timeout.write,
            pool=self.timeout.pool,
        )
        url = self.base_url + "/api/pull"
        try:
            with self._client.stream(
                "POST",
                "/api/pull",
                json={"model": model, "stream": True},
                timeout=timeout,
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise OllamaHTTPError(
                        "POST",
                        url,
                        response.status_code,
                        error_text_from_response(response),
                    )

                yield from response.iter_lines()
        except httpx.ReadTimeout as error:
            raise OllamaPullError(
                model,
                f"no data from {url} for {idle_timeout} s (idle timeout)",
                retryable=True,
            ) from error
        except httpx.TransportError as error:
            raise OllamaUnreachableError(
                f"POST {url} failed: {describe_transport_error(error, timeout)}"
            ) from error

    def pull(
        self,
        model: str,
        idle_timeout: float,
        total_timeout: float | None = None,
        on_status: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Pull a model through the streamed /api/pull and return the final status.

        Raises OllamaPullError for an error inside the stream, an idle stream, a
        stream without "success" or a pull longer than `total_timeout` seconds.
        """
        deadline = None if total_timeout is None else time.monotonic() + total_timeout
        lines = self.iter_pull_lines(model, idle_timeout)
        try:
            return read_pull_stream(model, lines, deadline, on_status)
        finally:
            lines.close()

    def delete(self, model: str) -> bool:
        """Delete a model through DELETE /api/delete.

        Returns True when the server deleted it and False when it answered 404
        because the model was not there.
        """
        try:
            self._request("DELETE", "/api/delete", {"model": model})
        except OllamaHTTPError as error:
            if error.status_code == 404:
                return False
            raise

        return True

    def embed(self, model: str, inputs: list[str]) -> dict[str, Any]:
        """Send POST /api/embed and return the response body."""
        return self._request_json(
            "POST", "/api/embed", {"model": model, "input": inputs}
        )
