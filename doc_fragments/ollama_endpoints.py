# Copyright: contributors to ollama-fleet
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the `endpoints` option shared by the ollama_* modules.

The option matches ENDPOINTS_ARGUMENT_SPEC in module_utils/ollama_api.py.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  endpoints:
    description: Ollama servers that the module sends its requests to.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Host name used in results and messages. Leading and trailing spaces are
            removed, and an empty name is an error.
        type: str
        required: true
      url:
        description:
          - Base URL, http or https, such as C(http://gpu-1.example:11434).
          - Must not use 0.0.0.0 or ::, which are bind addresses.
        type: str
        required: true
"""
