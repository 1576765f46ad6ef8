"""Find inventory group variables that the playbook's group_vars/all.yml overrides."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_shadowed_group_vars
short_description: Inventory group variables that group_vars/all overrides
description:
  - Ansible ranks the playbook's C(group_vars/all) above two places where
    users write fleet-wide settings, the C(vars) of any group inside an
    inventory source and C(group_vars/all) beside the inventory. A value
    written there for a variable that the playbook's C(group_vars/all) also
    sets is ignored without a warning.
  - Returns one entry for each such variable whose value differs from the
    winning one. Variables given as extra vars (C(-e)) are left out, because
    those win over both.
  - Reads the run's inventory sources again with the run's vault secrets.
options:
  _terms:
    description: The folder whose C(group_vars) wins, usually C(playbook_dir).
    required: true
    type: list
    elements: path
"""

EXAMPLES = r"""
- name: List the overridden inventory group variables
  ansible.builtin.debug:
    msg: "{{ query('fleet_shadowed_group_vars', playbook_dir) }}"
"""

RETURN = r"""
_list:
  description:
    - One entry a variable, with C(name), C(where) (the group or file that set
      it), C(value) and C(winning) (both as JSON text; a vault-encrypted
      value is shown as C(vault-encrypted)).
  type: list
  elements: dict
"""

import json
import os
from collections.abc import Iterable
from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.inventory.manager import InventoryManager
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import EncryptedString
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display
from ansible.utils.vars import load_extra_vars


def shadowed_group_vars(
    loader: DataLoader,
    sources: Iterable[str],
    playbook_dir: str,
    extra_names: Iterable[str] = (),
    run_hosts: Iterable[str] | None = None,
) -> list[dict[str, str]]:
    """List the inventory group variables that playbook_dir/group_vars/all overrides.

    `sources` are the run's inventory sources (ansible_inventory_sources) and
    `extra_names` the names given as extra vars, which are left out. When
    `run_hosts` (the run's groups['all']) is given and reading the sources
    again finds other hosts, as with a pipe read once or a script that fails,
    it warns that the check was skipped and returns no entries.
    """
    playbook_group_vars = os.path.join(playbook_dir, "group_vars")
    winning = _group_vars_all(loader, playbook_group_vars)
    for name in extra_names:
        winning.pop(name, None)
    if not winning:
        return []

    # A source that is not a path, such as a host list "a,b,", goes to
    # InventoryManager unchanged. Ansible reads group_vars/ beside the path as
    # given, so a linked inventory file is not resolved to its target.
    sources = [
        os.path.abspath(source) if os.path.exists(source) else source
        for source in map(str, sources)
    ]
    shadowed: list[dict[str, str]] = []
    inventory = InventoryManager(loader=loader, sources=sources)
    if run_hosts is not None and set(inventory.hosts) != set(run_hosts):
        Display().warning(
            "Preflight could not read the inventory "
            f"{', '.join(map(str, sources))} a second time (it found "
            f"{len(inventory.hosts)} of the run's {len(set(run_hosts))} hosts), so "
            "it did not check for group variables that the project's "
            "group_vars/all.yml overrides. Give the inventory as files, not a pipe."
        )
        return []
    for group in sorted(inventory.groups.values(), key=lambda group: group.name):
        where = f"the vars of group {group.name} in the inventory"
        for name, value in sorted(group.get_vars().items()):
            if name in winning and _differs(value, winning[name]):
                shadowed.append(_entry(name, where, value, winning[name]))

    seen = {os.path.realpath(playbook_group_vars)}
    for source in filter(os.path.exists, sources):
        base = source if os.path.isdir(source) else os.path.dirname(source)
        group_vars = os.path.join(base, "group_vars")
        if os.path.realpath(group_vars) in seen:
            continue
        seen.add(os.path.realpath(group_vars))
        for name, value in sorted(_group_vars_all(loader, group_vars).items()):
            if name in winning and _differs(value, winning[name]):
                where = f"{group_vars}/all"
                shadowed.append(_entry(name, where, value, winning[name]))
    return shadowed


def _group_vars_all(loader: DataLoader, group_vars: str) -> dict[str, Any]:
    """Load group_vars/all (a file with or without extension, or a folder)."""
    if not os.path.isdir(group_vars):
        return {}
    merged: dict[str, Any] = {}
    for path in loader.find_vars_files(group_vars, "all"):
        data = loader.load_from_file(path, unsafe=True)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise AnsibleLookupError(
                f"{path} must contain a mapping of variable names to values, "
                f"not {type(data).__name__}"
            )
        merged.update(data)
    return merged


def _differs(value: Any, winning: Any) -> bool:
    """Tell whether losing `value` changes anything.

    INI text equals the number or boolean it parses as ("11434", "false"). A
    vault-encrypted value counts as different without being decrypted, because
    the run may have no password for it and Ansible ignores it anyway.
    """
    if isinstance(value, EncryptedString):
        return True
    if isinstance(winning, bool):
        try:
            return boolean(value, strict=True) != winning
        except TypeError:
            return True
    return value != winning and str(value) != str(winning)


def _entry(name: str, where: str, value: Any, winning: Any) -> dict[str, str]:
    return {
        "name": name,
        "where": where,
        "value": _shown(value),
        "winning": _shown(winning),
    }


def _shown(value: Any) -> str:
    """Return the value as JSON text for a message, hiding inline vault values."""
    # NOTE: a value from a wholly vault-encrypted file arrives decrypted and is
    # shown as it is. Only names in group_vars/all.yml are compared, none a secret.
    if isinstance(value, EncryptedString):
        return "vault-encrypted"
    return json.dumps(value, sort_keys=True, default=str)


class LookupModule(LookupBase):
    def run(self, terms: list[str], variables: dict | None = None, **kwargs: Any):
        if len(terms) != 1:
            raise AnsibleLookupError(
                "fleet_shadowed_group_vars expects one folder (playbook_dir), "
                f"got {terms}"
            )
        variables = variables or {}
        return shadowed_group_vars(
            self._loader,
            variables.get("ansible_inventory_sources", []),
            str(terms[0]),
            load_extra_vars(self._loader),
            variables.get("groups", {}).get("all"),
        )
