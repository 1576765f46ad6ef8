#!/usr/bin/python
# Copyright: contributors to ollama-fleet
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402 (Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ollama_verify
short_description: Verify that Ollama endpoints serve a model with working embeddings
description:
  - Checks each endpoint from the host that runs the module, in this order. The
    server must respond to C(GET /), and C(/api/version) must report at least
    O(min_version). C(/api/tags) must list O(model), and C(/api/embed) must return
    one vector of O(dimensions) finite numbers.
  - Run it on the hosts that call Ollama (the Docker hosts) to prove that their
    address passes the firewall and that the model works.
  - Endpoints are checked concurrently, up to O(concurrency) at a time.
  - Fails when any endpoint fails, with a message that names each failing endpoint
    and its cause. Never changes anything.
options:
  model:
    description:
      - Model that must be listed and must return embeddings. C(x) means C(x:latest).
    type: str
    required: true
  min_version:
    description:
      - Lowest accepted server version. 0.1.34 fixes CVE-2024-37032, a path
        traversal through C(/api/pull).
      - A server below 0.1.34 fails with a message that names CVE-2024-37032, and a
        O(min_version) below 0.1.34 draws a warning.
    type: str
    default: 0.1.34
  dimensions:
    description:
      - Expected length of the embedding vector, such as 768 for nomic-embed-text.
        When omitted, any non-empty vector passes.
    type: int
  embed_input:
    description: Text sent to C(/api/embed) as the single input.
    type: str
    default: ollama_verify probe
  connect_timeout:
    description: Seconds to wait for a TCP connection to each endpoint.
    type: float
    default: 5
  read_timeout:
    description:
      - Seconds to wait for each response. The first embed request loads the model,
        which can take longer than later ones.
    type: float
    default: 60
  concurrency:
    description: Maximum number of endpoints checked at the same time.
    type: int
    default: 8
extends_documentation_fragment:
  - ollama_endpoints
attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs the same checks in check mode.
  diff_mode:
    support: none
    description: The module changes nothing, so there is no diff.
requirements:
  - httpx on the host that runs the module
author:
  - ollama-fleet contributors
"""

EXAMPLES = r"""
- name: Verify every GPU host from this Docker host
  ollama_verify:
    endpoints:
      - name: gpu-1
        url: http://gpu-1.example:11434
      - name: gpu-2
        url: http://gpu-2.example:11434
    model: nomic-embed-text
    dimensions: 768
    min_version: 0.1.34
"""

RETURN = r"""
endpoints:
  description: One result per endpoint, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The endpoint's name.
      type: str
      sample: gpu-1
    url:
      description: The endpoint's URL without a trailing slash.
      type: str
      sample: http://gpu-1.example:11434
    version:
      description: Version from C(/api/version), or None when not reached.
      type: str
      sample: 0.32.14
    model:
      description: The model name with its tag.
      type: str
      sample: nomic-embed-text:latest
    digest:
      description: Digest of the model from C(/api/tags), or None.
      type: str
      sample: 0a109f422b47e3a30ba2b10eca18548e944e8a23073ee3f3e947efcf3c45e59f
    dimensions:
      description: Length of the returned embedding vector, or None.
      type: int
      sample: 768
    latency_ms:
      description:
        - Round-trip time of the C(/api/embed) request in milliseconds, or None
          when the check stopped earlier.
      type: float
      sample: 41.7
    ok:
      description: Whether every check passed.
      type: bool
      sample: true
    error:
      description: Cause of the first failed check, or None.
      type: str
      sample: "unreachable: connection refused"
"""

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.ollama_api import (
    ENDPOINTS_ARGUMENT_SPEC,
    HAS_HTTPX,
    HTTPX_IMPORT_ERROR,
    EmbeddingCheckError,
    OllamaClient,
    OllamaError,
    OllamaHTTPError,
    OllamaUnreachableError,
    build_limits,
    build_timeout,
    check_embedding,
    find_model,
    normalize_model_name,
    parse_version,
    validate_endpoints,
    version_at_least,
)

# First release with the fix for CVE-2024-37032 ("Probllama"), a path traversal
# through /api/pull digests that leads to remote code execution.
SECURITY_FLOOR_VERSION = "0.1.34"
SECURITY_FLOOR_CVE = "CVE-2024-37032"


class EndpointCheckFailed(Exception):
    """A failed check, with the cause as it appears in the result's `error`."""


def below_minimum_message(version: str, min_version: str) -> str:
    """Describe a server older than `min_version`, naming the CVE it lacks if any."""
    message = f"version {version} is below the minimum {min_version}"
    if not version_at_least(version, SECURITY_FLOOR_VERSION):
        message += (
            f"; {SECURITY_FLOOR_CVE} (remote code execution through /api/pull) is "
            f"fixed from {SECURITY_FLOOR_VERSION} on"
        )
    return f"{message}; upgrade Ollama on this host"


def _describe_error(error: OllamaError) -> str:
    """Return the cause of a failed request for the result's `error` field."""
    if isinstance(error, OllamaUnreachableError):
        return f"unreachable: {error}"

    if isinstance(error, OllamaHTTPError):
        return (
            f"HTTP {error.status_code} from {error.method} {error.url}: {error.error}"
        )

    return str(error)


def check_endpoint(
    client: OllamaClient,
    name: str,
    model: str,
    min_version: str,
    dimensions: int | None,
    embed_input: str,
) -> dict[str, Any]:
    """Run every check against one endpoint and return its result.

    The checks stop at the first failure, whose cause goes to `error`.
    """
    result: dict[str, Any] = {
        "name": name,
        "url": client.base_url,
        "version": None,
        "model": normalize_model_name(model),
        "digest": None,
        "dimensions": None,
        "latency_ms": None,
        "ok": False,
        "error": None,
    }
    try:
        _run_checks(client, result, min_version, dimensions, embed_input)
    except EndpointCheckFailed as failure:
        result["error"] = str(failure)
    except OllamaError as error:
        result["error"] = _describe_error(error)
    else:
        result["ok"] = True

    return result


def _run_checks(
    client: OllamaClient,
    result: dict[str, Any],
    min_version: str,
    dimensions: int | None,
    embed_input: str,
) -> None:
    """Fill `result` step by step, raising at the first failed check."""
    client.ping()

    version = client.version()
    result["version"] = version
    try:
        recent_enough = version_at_least(version, min_version)
    except ValueError as error:
        raise EndpointCheckFailed(f"cannot compare version: {error}") from error

    if not recent_enough:
        raise EndpointCheckFailed(below_minimum_message(version, min_version))

    model = result["model"]
    entry = find_model(client.list_models(), model)
    if entry is None:
        raise EndpointCheckFailed(
            f"model {model} not found in /api/tags; run `ollama pull {model}` on "
            f"{result['name']}"
        )
    result["digest"] = entry.get("digest")

    started = time.monotonic()
    body = client.embed(model, [embed_input])
    result["latency_ms"] = round((time.monotonic() - started) * 1000, 1)

    embeddings = body.get("embeddings")
    if not isinstance(embeddings, list) or len(embeddings) != 1:
        raise EndpointCheckFailed(
            f"/api/embed returned {_count(embeddings)} embeddings for 1 input"
        )

    try:
        result["dimensions"] = check_embedding(embeddings[0], dimensions)
    except EmbeddingCheckError as error:
        if isinstance(embeddings[0], list):
            result["dimensions"] = len(embeddings[0])
        raise EndpointCheckFailed(f"/api/embed: {error}") from error


def _count(embeddings: Any) -> str:
    """Describe the `embeddings` field for a message."""
    if isinstance(embeddings, list):
        return str(len(embeddings))

    return "no list of" if embeddings is None else f"a {type(embeddings).__name__}, not"


def verify_endpoints(
    endpoints: list[dict[str, str]],
    model: str,
    min_version: str,
    dimensions: int | None,
    embed_input: str,
    connect_timeout: float,
    read_timeout: float,
    concurrency: int,
) -> list[dict[str, Any]]:
    """Check the endpoints concurrently and return their results in input order.

    Each endpoint gets its own client because each has its own base URL. A client
    keeps one connection, since its checks run one after another.
    """
    timeout = build_timeout(connect_timeout, read_timeout)

    def check_one(endpoint: dict[str, str]) -> dict[str, Any]:
        with OllamaClient(endpoint["url"], timeout, build_limits(1)) as client:
            return check_endpoint(
                client, endpoint["name"], model, min_version, dimensions, embed_input
            )

    workers = max(1, min(concurrency, len(endpoints)))
    with ThreadPoolExecutor(max_workers=workers) as executor:
        return list(executor.map(check_one, endpoints))


def failure_message(results: list[dict[str, Any]]) -> str:
    """Return one message that names each failing endpoint and its cause."""
    failing = [result for result in results if not result["ok"]]
    causes = "; ".join(
        f"{result['name']} ({result['url']}): {result['error']}" for result in failing
    )
    return f"{len(failing)} of {len(results)} Ollama endpoints failed: {causes}"


def validate_settings(params: dict[str, Any]) -> list[dict[str, str]]:
    """Check the options and return the endpoints with normalised URLs.

    Raises ValueError naming the invalid option or endpoint.
    """
    normalized = validate_endpoints(params["endpoints"])
    normalize_model_name(params["model"])
    parse_version(params["min_version"])
    if params["dimensions"] is not None and params["dimensions"] < 1:
        raise ValueError(f"dimensions must be 1 or more, got {params['dimensions']}")

    if params["concurrency"] < 1:
        raise ValueError(f"concurrency must be 1 or more, got {params['concurrency']}")

    for option in ("connect_timeout", "read_timeout"):
        if params[option] <= 0:
            raise ValueError(
                f"{option} must be more than 0 seconds, got {params[option]}"
            )

    return normalized


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "endpoints": ENDPOINTS_ARGUMENT_SPEC,
            "model": {"type": "str", "required": True},
            "min_version": {"type": "str", "default": "0.1.34"},
            "dimensions": {"type": "int"},
            "embed_input": {"type": "str", "default": "ollama_verify probe"},
            "connect_timeout": {"type": "float", "default": 5},
            "read_timeout": {"type": "float", "default": 60},
            "concurrency": {"type": "int", "default": 8},
        },
        supports_check_mode=True,
    )
    if not HAS_HTTPX:
        module.fail_json(
            msg=missing_required_lib("httpx"), exception=HTTPX_IMPORT_ERROR
        )

    params = module.params
    try:
        endpoints = validate_settings(params)
    except ValueError as error:
        module.fail_json(msg=str(error))

    if not version_at_least(params["min_version"], SECURITY_FLOOR_VERSION):
        module.warn(
            f"min_version {params['min_version']} accepts servers without the fix for "
            f"{SECURITY_FLOOR_CVE}, which arrived in {SECURITY_FLOOR_VERSION}; raise "
            f"min_version to {SECURITY_FLOOR_VERSION} or later"
        )

    results = verify_endpoints(
        endpoints,
        params["model"],
        params["min_version"],
        params["dimensions"],
        params["embed_input"],
        params["connect_timeout"],
        params["read_timeout"],
        params["concurrency"],
    )
    if not all(result["ok"] for result in results):
        module.fail_json(msg=failure_message(results), changed=False, endpoints=results)

    module.exit_json(changed=False, endpoints=results)


if __name__ == "__main__":
    main()
