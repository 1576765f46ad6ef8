#!/usr/bin/python
# Copyright: contributors to ollama-fleet
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402 (Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ollama_model
short_description: Ensure models are present on or absent from an Ollama server
description:
  - Pulls each named model that C(/api/tags) does not list, or deletes each named
    model that it lists.
  - A model that is already present is not pulled again, so a second run reports no
    change.
  - After pulling, the module reads C(/api/tags) again and fails unless the model is
    listed, so a pull that reported success but stored nothing is caught.
  - Runs on the host that can reach O(url); the ollama role runs it on the GPU host
    against the local server.
options:
  name:
    description:
      - Models to manage. C(nomic-embed-text) and C(nomic-embed-text:latest) are the
        same model. A name may include a namespace or registry, as in
        C(registry.ollama.ai/library/all-minilm:v2).
    type: list
    elements: str
    required: true
    aliases: [models]
  state:
    description:
      - V(present) pulls missing models; V(absent) deletes listed ones.
    type: str
    choices: [present, absent]
    default: present
  prune:
    description:
      - With O(state=present), also delete every model on the server that O(name)
        does not list, after the pulls succeed.
      - O(name) may then be empty, which deletes every model.
      - Tags count, so C(nomic-embed-text:v1.5) is deleted when only
        C(nomic-embed-text) (the latest tag) is listed.
    type: bool
    default: false
  url:
    description:
      - Base URL of the Ollama server, http or https.
      - Must not be 0.0.0.0 or ::, which are bind addresses.
    type: str
    default: http://127.0.0.1:11434
  connect_timeout:
    description: Seconds to wait for a TCP connection to the server.
    type: float
    default: 5
  request_timeout:
    description:
      - Seconds to wait for a response to C(/api/tags) and C(/api/delete).
    type: float
    default: 30
  idle_timeout:
    description:
      - Seconds the pull stream may stay silent before the attempt fails. It bounds
        each wait for data, not the whole download.
    type: float
    default: 120
  pull_timeout:
    description:
      - Maximum seconds for one pull attempt of one model, including all its layers.
    type: float
    default: 3600
  retries:
    description:
      - Number of extra pull attempts after a failure that a retry can fix, such as
        a dropped connection or an idle stream. Ollama resumes a broken download.
      - Errors such as an unknown model name are not retried.
    type: int
    default: 3
  retry_delay:
    description: Seconds to wait between pull attempts.
    type: float
    default: 5
attributes:
  check_mode:
    support: full
    description: Reports which models would be pulled or deleted without changing them.
  diff_mode:
    support: full
    description: Shows the managed models that are listed before and after.
requirements:
  - httpx (python3-httpx on Debian) on the host that runs the module
notes:
  - The Ollama API has no authentication. Run this against a server that only
    trusted hosts can reach.
author:
  - ollama-fleet contributors
"""

EXAMPLES = r"""
- name: Pull the embedding model on the local Ollama server
  ollama_model:
    name: nomic-embed-text
    url: http://127.0.0.1:11434

- name: Pull several models, allowing slow registry downloads
  ollama_model:
    name:
      - nomic-embed-text:v1.5
      - all-minilm
    idle_timeout: 300
    retries: 5

- name: Remove a model that is no longer used
  ollama_model:
    name: mxbai-embed-large
    state: absent

- name: Keep exactly these models on the server
  ollama_model:
    name:
      - nomic-embed-text
      - all-minilm:l6-v2
    prune: true
  register: models

- name: Show the digest the server stores for each model
  ansible.builtin.debug:
    msg: "{{ models.models | items2dict(key_name='name', value_name='digest') }}"
"""

RETURN = r"""
models:
  description: One entry per requested model, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The model name as C(/api/tags) lists it, with its tag.
      type: str
      sample: nomic-embed-text:latest
    digest:
      description:
        - Digest from C(/api/tags). None when the model is absent, or in check mode
          when it would be pulled.
      type: str
      sample: 0a109f422b47e3a30ba2b10eca18548e944e8a23073ee3f3e947efcf3c45e59f
    size:
      description: Size in bytes from C(/api/tags), or None when the model is absent.
      type: int
      sample: 274302450
    changed:
      description: Whether the model was (or in check mode would be) pulled or deleted.
      type: bool
      sample: true
removed:
  description:
    - Models that O(prune) deleted (or in check mode would delete), as C(/api/tags)
      listed them.
  returned: always
  type: list
  elements: str
  sample: [all-minilm:latest]
"""

import time
import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.ollama_api import (
    DEFAULT_URL,
    HAS_HTTPX,
    HTTPX_IMPORT_ERROR,
    OllamaClient,
    OllamaError,
    OllamaHTTPError,
    OllamaPullError,
    OllamaUnreachableError,
    build_timeout,
    find_model,
    is_permanent_pull_error,
    model_key,
    normalize_model_name,
    validate_endpoint_url,
)


def is_retryable(error: OllamaError) -> bool:
    """Return whether another pull attempt can fix the error."""
    if isinstance(error, OllamaPullError):
        return error.retryable

    if isinstance(error, OllamaHTTPError):
        # A non-streamed pull reports an unknown model as HTTP 500.
        if is_permanent_pull_error(error.error):
            return False
        return error.status_code >= 500 or error.status_code == 429

    return isinstance(error, OllamaUnreachableError)


def pull_with_retries(
    client: OllamaClient,
    model: str,
    idle_timeout: float,
    pull_timeout: float,
    retries: int,
    retry_delay: float,
    sleep: Any = time.sleep,
) -> list[str]:
    """Pull the model, retrying errors that a retry can fix.

    Returns the errors of the failed attempts. Raises the last error when every
    attempt fails or when an error is not retryable.
    """
    failures: list[str] = []
    for attempt in range(retries + 1):
        try:
            client.pull(model, idle_timeout=idle_timeout, total_timeout=pull_timeout)
            return failures
        except OllamaError as error:
            failures.append(str(error))
            if attempt == retries or not is_retryable(error):
                raise

        sleep(retry_delay)

    return failures


def ensure_present(
    client: OllamaClient,
    names: list[str],
    check_mode: bool,
    pull_settings: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[str]]:
    """Pull each missing model and return (model results, warnings)."""
    listed = client.list_models()
    results: list[dict[str, Any]] = []
    warnings: list[str] = []
    for name in names:
        entry = find_model(listed, name)
        if entry is not None:
            results.append(_result(name, entry, changed=False))
            continue

        if check_mode:
            results.append(_result(name, None, changed=True))
            continue

        failures = pull_with_retries(client, name, **pull_settings)
        if failures:
            warnings.append(
                f"pulling {name} succeeded after {len(failures)} failed attempts; "
                f"last error: {failures[-1]}"
            )

        listed = client.list_models()
        entry = find_model(listed, name)
        if entry is None:
            raise OllamaError(
                f"the pull of {name} from {client.base_url} reported success, but "
                "/api/tags does not list the model; check the server's log and "
                "free disk space in its model folder (OLLAMA_MODELS)"
            )

        results.append(_result(name, entry, changed=True))

    return results, warnings


def prune_unlisted(
    client: OllamaClient, names: list[str], check_mode: bool
) -> list[str]:
    """Delete every model the server lists that names does not, and return them."""
    keep = {model_key(name) for name in names}
    removed: list[str] = []
    for entry in client.list_models():
        listed = entry.get("name") or entry.get("model") or ""
        try:
            key = model_key(listed)
        except ValueError:
            continue

        if key in keep:
            continue

        if check_mode or client.delete(listed):
            removed.append(listed)

    return removed


def ensure_absent(
    client: OllamaClient, names: list[str], check_mode: bool
) -> list[dict[str, Any]]:
    """Delete each listed model and return the model results."""
    listed = client.list_models()
    results: list[dict[str, Any]] = []
    for name in names:
        entry = find_model(listed, name)
        if entry is None:
            results.append(_result(name, None, changed=False))
            continue

        deleted = True
        if not check_mode:
            deleted = client.delete(entry.get("name") or name)

        results.append(_result(name, None, changed=deleted))

    return results


def _result(name: str, entry: dict[str, Any] | None, changed: bool) -> dict[str, Any]:
    """Build one entry of the `models` return value."""
    return {
        "name": normalize_model_name(name),
        "digest": entry.get("digest") if entry else None,
        "size": entry.get("size") if entry else None,
        "changed": changed,
    }


def build_diff(
    results: list[dict[str, Any]], state: str, removed: list[str] | None = None
) -> dict[str, dict[str, list[str]]]:
    """Return the before and after lists of the managed models that are present."""
    before: list[str] = list(removed or [])
    after: list[str] = []
    for result in results:
        was_present = (state == "present") != result["changed"]
        if was_present:
            before.append(result["name"])
        if state == "present":
            after.append(result["name"])

    return {"before": {"models": before}, "after": {"models": after}}


def validate_settings(params: dict[str, Any]) -> str:
    """Check the options and return the normalised server URL.

    Raises ValueError naming the first invalid option.
    """
    url = validate_endpoint_url(params["url"])
    prune = params.get("prune") and params["state"] == "present"
    if not params["name"] and not prune:
        raise ValueError("name must list at least one model")

    if params.get("prune") and params["state"] != "present":
        raise ValueError(
            "prune=true is invalid with state=absent; set state=present or drop prune"
        )

    for name in params["name"]:
        normalize_model_name(name)

    if params["retries"] < 0:
        raise ValueError(f"retries must be 0 or more, got {params['retries']}")

    for option in (
        "connect_timeout",
        "request_timeout",
        "idle_timeout",
        "pull_timeout",
    ):
        if params[option] <= 0:
            raise ValueError(
                f"{option} must be more than 0 seconds, got {params[option]}"
            )

    if params["retry_delay"] < 0:
        raise ValueError(f"retry_delay must be 0 or more, got {params['retry_delay']}")

    return url


def run(params: dict[str, Any], url: str, check_mode: bool) -> dict[str, Any]:
    """Bring the models to the requested state and return the module result.

    Raises OllamaError when a request fails.
    """
    timeout = build_timeout(params["connect_timeout"], params["request_timeout"])
    warnings: list[str] = []
    removed: list[str] = []
    with OllamaClient(url, timeout) as client:
        if params["state"] == "present":
            pull_settings = {
                "idle_timeout": params["idle_timeout"],
                "pull_timeout": params["pull_timeout"],
                "retries": params["retries"],
                "retry_delay": params["retry_delay"],
            }
            results, warnings = ensure_present(
                client, params["name"], check_mode, pull_settings
            )
            if params.get("prune"):
                removed = prune_unlisted(client, params["name"], check_mode)
        else:
            results = ensure_absent(client, params["name"], check_mode)

    return {
        "changed": bool(removed) or any(result["changed"] for result in results),
        "models": results,
        "removed": removed,
        "diff": build_diff(results, params["state"], removed),
        "warnings": warnings,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {
                "type": "list",
                "elements": "str",
                "required": True,
                "aliases": ["models"],
            },
            "state": {
                "type": "str",
                "choices": ["present", "absent"],
                "default": "present",
            },
            "prune": {"type": "bool", "default": False},
            "url": {"type": "str", "default": DEFAULT_URL},
            "connect_timeout": {"type": "float", "default": 5},
            "request_timeout": {"type": "float", "default": 30},
            "idle_timeout": {"type": "float", "default": 120},
            "pull_timeout": {"type": "float", "default": 3600},
            "retries": {"type": "int", "default": 3},
            "retry_delay": {"type": "float", "default": 5},
        },
        supports_check_mode=True,
    )
    if not HAS_HTTPX:
        module.fail_json(
            msg=missing_required_lib("httpx"), exception=HTTPX_IMPORT_ERROR
        )

    try:
        url = validate_settings(module.params)
    except ValueError as error:
        module.fail_json(msg=str(error))

    try:
        result = run(module.params, url, module.check_mode)
    except OllamaError as error:
        hint = ""
        if not is_retryable(error) and is_permanent_pull_error(
            getattr(error, "error", str(error))
        ):
            hint = (
                ". The registry has no model by that name and tag: check the "
                "spelling in this host's ollama_models"
            )
        module.fail_json(
            msg=f"ollama_model on {url}: {error}{hint}",
            exception=traceback.format_exc(),
        )

    for warning in result.pop("warnings"):
        module.warn(warning)

    if not module._diff:
        del result["diff"]

    module.exit_json(**result)


if __name__ == "__main__":
    main()
