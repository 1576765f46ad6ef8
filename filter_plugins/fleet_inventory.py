"""Find inventory group variables that the playbook's group_vars/all.yml overrides.

Ansible ranks the playbook's group_vars/all above two places where users
write fleet-wide settings: the `vars:` of any group inside an inventory
file, and group_vars/all beside the inventory. A value written there for a
variable that group_vars/all.yml also sets is ignored without a warning.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader


def fleet_shadowed_group_vars(
    sources: Iterable[str], playbook_dir: str
) -> list[dict[str, Any]]:
    """List the inventory group variables that playbook_dir/group_vars/all overrides.

    `sources` are the inventory sources of the run (ansible_inventory_sources).
    Each entry names the variable, where it was set, the value written there
    and the value that wins. A value equal to the winning one is not listed.
    """
    loader = DataLoader()
    playbook_group_vars = os.path.realpath(os.path.join(playbook_dir, "group_vars"))
    winning = _group_vars_all(loader, playbook_group_vars)
    if not winning:
        return []

    sources = [os.path.realpath(str(source)) for source in sources]
    shadowed: list[dict[str, Any]] = []
    inventory = InventoryManager(loader=loader, sources=sources)
    for group in sorted(inventory.groups.values(), key=lambda group: group.name):
        for name, value in sorted(group.get_vars().items()):
            if name in winning and value != winning[name]:
                shadowed.append(
                    _entry(
                        name,
                        value,
                        winning[name],
                        f"the vars of group {group.name} in the inventory",
                    )
                )

    seen = {playbook_group_vars}
    for source in sources:
        base = source if os.path.isdir(source) else os.path.dirname(source)
        group_vars = os.path.join(base, "group_vars")
        if os.path.realpath(group_vars) in seen:
            continue
        seen.add(os.path.realpath(group_vars))
        for name, value in sorted(_group_vars_all(loader, group_vars).items()):
            if name in winning and value != winning[name]:
                shadowed.append(_entry(name, value, winning[name], f"{group_vars}/all"))
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
            raise AnsibleFilterError(
                f"{path} must hold a mapping of variable names to values, "
                f"not {type(data).__name__}"
            )
        merged.update(data)
    return merged


def _entry(name: str, value: Any, winning: Any, where: str) -> dict[str, Any]:
    return {"name": name, "where": where, "value": value, "winning": winning}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fleet_shadowed_group_vars": fleet_shadowed_group_vars}
