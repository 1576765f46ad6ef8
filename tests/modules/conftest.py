"""The module tests' fixtures, defined in module_support.py.

Test files import helpers from module_support, not from this file: with
several conftest.py files on sys.path, `import conftest` finds whichever
was imported first.
"""

from module_support import (  # noqa: F401 (pytest finds fixtures by name here)
    module_runner,
    ollama_binary,
    ollama_factory,
    ollama_server,
    stub_factory,
    tansu_broker,
)
