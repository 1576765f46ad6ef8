#!/usr/bin/python
# Copyright: contributors to ollama-fleet
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402 (Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ollama_capacity
short_description: Measure the embedding throughput of Ollama endpoints
description:
  - Sends C(/api/embed) requests of O(batch_size) texts to each endpoint, one
    request at a time, for at least O(seconds), and reports the embeddings per
    second that the endpoint served.
  - Derives from the measurements how many consumers each endpoint should get,
    in proportion to its throughput. The slowest endpoint gets one consumer and
    no endpoint more than O(max_consumers_per_endpoint).
  - A measurement varies from run to run, so an endpoint whose ratio to the
    slowest lands near a rounding boundary would switch between two counts.
    When O(current) gives an endpoint's deployed count, that count is kept
    while the ratio stays within 0.5 + O(keep_margin) of it, so a second run
    redeploys nothing unless the capacities really changed.
  - Endpoints are measured one after another, so they do not compete for the
    network or the CPU of the host that runs the module.
  - Sequential requests measure what one endpoint serves, because Ollama serves
    BERT-family embedding models (nomic-embed-text) one request at a time.
  - Puts load on the endpoints for O(seconds) each; run it before a bulk
    ingestion, not during one. Changes nothing.
options:
  model:
    description: Embedding model to request.
    type: str
    required: true
  seconds:
    description: Minimum measuring time per endpoint, in seconds.
    type: float
    default: 5
  batch_size:
    description: Texts per request, as the consumers send them.
    type: int
    default: 25
  text_words:
    description: Words per text; source files of a few hundred words are typical.
    type: int
    default: 200
  max_consumers_per_endpoint:
    description: Upper bound of the consumers one endpoint gets.
    type: int
    default: 8
  read_timeout:
    description: Seconds to wait for each response.
    type: float
    default: 120
  current:
    description:
      - Map of endpoint name to the number of consumers deployed for it now.
      - Endpoints missing from the map get the rounded ratio.
    type: dict
    default: {}
  keep_margin:
    description:
      - How far past the rounding boundary, in consumers, the ratio must move
        before an endpoint's count in O(current) is replaced.
      - Between 0 and 0.5; 0 turns keeping off for ratios past the boundary.
    type: float
    default: 0.25
extends_documentation_fragment:
  - ollama_endpoints
attributes:
  check_mode:
    support: full
    description: The module only reads, so it measures in check mode too.
  diff_mode:
    support: none
    description: The module changes nothing.
requirements:
  - httpx on the host that runs the module
author:
  - ollama-fleet contributors
"""

EXAMPLES = r"""
- name: Measure every GPU host's embedding throughput from the Docker host
  ollama_capacity:
    endpoints:
      - name: gpu-1
        url: http://gpu-1.example:11434
      - name: gpu-2
        url: http://gpu-2.example:11434
    model: nomic-embed-text
    seconds: 5
  register: capacity

- name: Measure again, keeping the deployed counts unless capacities changed
  ollama_capacity:
    endpoints: "{{ endpoints }}"
    model: nomic-embed-text
    current:
      gpu-1: 1
      gpu-2: 2
"""

RETURN = r"""
endpoints:
  description: One result per endpoint, in the order given.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The endpoint's name.
      type: str
      sample: gpu-1
    url:
      description: The endpoint's URL.
      type: str
      sample: http://gpu-1.example:11434
    requests:
      description: Requests measured, after one warm-up request.
      type: int
      sample: 12
    embeddings_per_second:
      description: Texts embedded per second, sequentially.
      type: float
      sample: 71.4
    ratio:
      description: The endpoint's throughput divided by the slowest endpoint's.
      type: float
      sample: 1.93
    consumers:
      description: Consumers this endpoint should get, in proportion to the others.
      type: int
      sample: 2
    kept_current:
      description:
        - Whether O(consumers) is the count from O(current), kept although
          the rounded ratio differs.
      type: bool
      sample: true
consumers_per_endpoint:
  description: Map of endpoint name to its number of consumers.
  returned: success
  type: dict
  sample: {"gpu-1": 1, "gpu-2": 2}
"""

import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.ollama_api import (
    ENDPOINTS_ARGUMENT_SPEC,
    HAS_HTTPX,
    HTTPX_IMPORT_ERROR,
    OllamaClient,
    OllamaError,
    build_limits,
    build_timeout,
    validate_endpoints,
)


def probe_texts(batch_size: int, text_words: int) -> list[str]:
    """Return batch_size distinct texts of text_words words each."""
    return [
        " ".join(f"word{(index * 7 + word) % 997}" for word in range(text_words))
        for index in range(batch_size)
    ]


def measure_endpoint(
    client: OllamaClient, model: str, texts: list[str], seconds: float
) -> dict[str, Any]:
    """Send sequential embed requests for at least `seconds` and at least twice.

    The first request, which may load the model, is not measured. Raises
    OllamaError when a request fails or returns fewer vectors than texts.
    """
    client.embed(model, texts)

    requests = 0
    started = time.monotonic()
    elapsed = 0.0
    while requests < 2 or elapsed < seconds:
        body = client.embed(model, texts)
        vectors = body.get("embeddings")
        if not isinstance(vectors, list) or len(vectors) != len(texts):
            raise OllamaError(
                f"{client.base_url}/api/embed returned no vector for each of "
                f"{len(texts)} texts"
            )
        requests += 1
        elapsed = time.monotonic() - started

    return {
        "requests": requests,
        "embeddings_per_second": round(requests * len(texts) / elapsed, 2),
    }


def consumers_for_capacities(
    capacities: list[float],
    maximum: int,
    current: list[int | None] | None = None,
    keep_margin: float = 0.0,
) -> list[tuple[float, int, bool]]:
    """Return (ratio, consumers, kept) per endpoint, in proportion to capacity.

    The slowest endpoint gets 1; an endpoint n times as fast gets round(n),
    capped at `maximum`. An endpoint's count in `current` is kept while its
    ratio is less than 0.5 + keep_margin away from that count.
    """
    slowest = min(capacities)
    if slowest <= 0:
        raise ValueError("every capacity must be more than 0")

    results = []
    for capacity, deployed in zip(
        capacities, current or [None] * len(capacities), strict=True
    ):
        ratio = capacity / slowest
        proposed = max(1, min(maximum, round(ratio)))
        kept = (
            deployed is not None
            and 1 <= deployed <= maximum
            and deployed != proposed
            and abs(ratio - deployed) < 0.5 + keep_margin
        )
        results.append((round(ratio, 2), deployed if kept else proposed, kept))
    return results


def measure_fleet(
    endpoints: list[dict[str, str]],
    model: str,
    seconds: float,
    batch_size: int,
    text_words: int,
    max_consumers: int,
    read_timeout: float,
    current: dict[str, int] | None = None,
    keep_margin: float = 0.0,
) -> list[dict[str, Any]]:
    """Measure each endpoint in turn and add its consumer count.

    Raises OllamaError naming the endpoint that failed.
    """
    texts = probe_texts(batch_size, text_words)
    timeout = build_timeout(5.0, read_timeout)
    results = []
    for endpoint in endpoints:
        with OllamaClient(endpoint["url"], timeout, build_limits(1)) as client:
            try:
                measured = measure_endpoint(client, model, texts, seconds)
            except OllamaError as error:
                raise OllamaError(
                    f"measuring {endpoint['name']} ({endpoint['url']}) failed: {error}"
                ) from error
        results.append({**endpoint, **measured})

    counts = consumers_for_capacities(
        [result["embeddings_per_second"] for result in results],
        max_consumers,
        [(current or {}).get(result["name"]) for result in results],
        keep_margin,
    )
    for result, (ratio, count, kept) in zip(results, counts, strict=True):
        result.update(ratio=ratio, consumers=count, kept_current=kept)
    return results


def parse_current(current: dict[str, Any]) -> dict[str, int]:
    """Return the deployed counts as integers; raise ValueError naming a bad one."""
    counts = {}
    for name, count in current.items():
        try:
            number = None if isinstance(count, bool) else int(str(count).strip())
        except ValueError:
            number = None
        if number is None or number < 1:
            raise ValueError(
                f"current[{name}] must be a whole number of consumers, 1 or more, "
                f"got {count!r}"
            )
        counts[name] = number
    return counts


def validate_settings(params: dict[str, Any]) -> list[dict[str, str]]:
    """Check the options and return the endpoints; raise ValueError naming the value."""
    endpoints = validate_endpoints(params["endpoints"])
    for option in ("seconds", "read_timeout"):
        if params[option] <= 0:
            raise ValueError(f"{option} must be more than 0, got {params[option]}")
    for option in ("batch_size", "text_words", "max_consumers_per_endpoint"):
        if params[option] < 1:
            raise ValueError(f"{option} must be 1 or more, got {params[option]}")
    if not 0 <= params["keep_margin"] < 0.5:
        raise ValueError(
            f"keep_margin must be at least 0 and less than 0.5, "
            f"got {params['keep_margin']}"
        )
    return endpoints


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "endpoints": ENDPOINTS_ARGUMENT_SPEC,
            "model": {"type": "str", "required": True},
            "seconds": {"type": "float", "default": 5},
            "batch_size": {"type": "int", "default": 25},
            "text_words": {"type": "int", "default": 200},
            "max_consumers_per_endpoint": {"type": "int", "default": 8},
            "read_timeout": {"type": "float", "default": 120},
            "current": {"type": "dict", "default": {}},
            "keep_margin": {"type": "float", "default": 0.25},
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
        results = measure_fleet(
            endpoints,
            params["model"],
            params["seconds"],
            params["batch_size"],
            params["text_words"],
            params["max_consumers_per_endpoint"],
            params["read_timeout"],
            parse_current(params["current"]),
            params["keep_margin"],
        )
    except (ValueError, OllamaError) as error:
        module.fail_json(msg=str(error))

    module.exit_json(
        changed=False,
        endpoints=results,
        consumers_per_endpoint={
            result["name"]: result["consumers"] for result in results
        },
    )


if __name__ == "__main__":
    main()
