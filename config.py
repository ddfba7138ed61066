"""pyinfra configuration, loaded from the repo root.

It must mutate `config`: bare module-level names are thrown away by pyinfra.
"""

from pyinfra import config

config.REQUIRE_PYINFRA_VERSION = ">=3.10,<4"
