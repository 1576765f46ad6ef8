"""Each module's documented options, fragments included, match its argument spec.

ansible-doc reads the project's ansible.cfg, which points doc_fragment_plugins
at doc_fragments/. A fragment that fails to load leaves its options undocumented,
and these tests then fail for the missing names.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
from typing import Any
from unittest import mock

import pytest
from module_support import REPO, VENV_BIN

MODULES = [
    "kafka_consumer_group_info",
    "kafka_topic_partitions",
    "ollama_capacity",
    "ollama_model",
    "ollama_verify",
]


class SpecCaptured(Exception):
    """Exception that stops main() once AnsibleModule has received the argument spec."""


def argument_spec(module_name: str) -> dict[str, Any]:
    """Return the argument_spec that the module's main() passes to AnsibleModule."""
    module = importlib.import_module(module_name)
    captured: dict[str, Any] = {}

    def capture(**kwargs: Any) -> None:
        captured.update(kwargs)
        raise SpecCaptured

    with (
        mock.patch.object(module, "AnsibleModule", capture),
        pytest.raises(SpecCaptured),
    ):
        module.main()

    return captured["argument_spec"]


@pytest.fixture(scope="module")
def module_docs() -> dict[str, Any]:
    """Return ansible-doc's JSON output for every module, keyed by module name."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    completed = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "-t", "module", "--json", *MODULES],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def compare_options(
    documented: dict[str, Any], spec: dict[str, Any], path: str
) -> list[str]:
    """Return one line per difference between documented options and a spec."""
    differences = [
        f"{path}{name}: in the argument spec but not documented"
        for name in sorted(set(spec) - set(documented))
    ]
    differences += [
        f"{path}{name}: documented but not in the argument spec"
        for name in sorted(set(documented) - set(spec))
    ]
    for name in sorted(set(spec) & set(documented)):
        rules = spec[name]
        doc = documented[name]
        expected = {
            "type": rules.get("type", "str"),
            "required": rules.get("required", False),
            "default": rules.get("default"),
            "choices": rules.get("choices"),
            "elements": rules.get("elements"),
            "aliases": sorted(rules.get("aliases", [])),
        }
        actual = {
            "type": doc.get("type", "str"),
            "required": doc.get("required", False),
            "default": doc.get("default"),
            "choices": doc.get("choices"),
            "elements": doc.get("elements"),
            "aliases": sorted(doc.get("aliases", [])),
        }
        for key, value in expected.items():
            if actual[key] != value:
                differences.append(
                    f"{path}{name}: {key} is {actual[key]!r} in the documentation "
                    f"but {value!r} in the argument spec"
                )

        if "options" in rules:
            differences += compare_options(
                doc.get("suboptions", {}), rules["options"], f"{path}{name}."
            )

    return differences


@pytest.mark.parametrize("module_name", MODULES)
def test_docs_match_argument_spec(
    module_name: str, module_docs: dict[str, Any]
) -> None:
    documented = module_docs[module_name]["doc"]["options"]

    differences = compare_options(documented, argument_spec(module_name), "")

    assert differences == []


@pytest.mark.parametrize(
    ("module_name", "fragment_option"),
    [
        ("kafka_consumer_group_info", "security_protocol"),
        ("kafka_topic_partitions", "sasl_password"),
        ("ollama_capacity", "endpoints"),
        ("ollama_verify", "endpoints"),
    ],
)
def test_fragment_options_documented(
    module_name: str, fragment_option: str, module_docs: dict[str, Any]
) -> None:
    documented = module_docs[module_name]["doc"]["options"]

    assert fragment_option in documented
    assert documented[fragment_option]["description"]
