"""pyinfra configuration, loaded from the repo root.

It must mutate `config`: bare module-level names are thrown away by pyinfra.
"""

from pyinfra import config

config.REQUIRE_PYINFRA_VERSION = ">=3.10,<4"

# The user's mistakes get one line and an exit code that says so (a misspelled inventory is an
# error, Ctrl-C exits 130): installed here, before pyinfra reads the inventory.
from ollama_gpu_fix.deploy import cliguard  # noqa: E402

cliguard.install()
