"""pyinfra configuration, loaded from the repo root.

It must mutate `config`: bare module-level names are thrown away by pyinfra.
"""

import os

from pyinfra import config

config.REQUIRE_PYINFRA_VERSION = ">=3.10,<4"

# Parallelism, set on purpose (docs/scale.md, bench/scale.py): 20 connections per core, which
# at 128 hosts on 2 cores took 31 s against 29-37 s for 32 and 66-77 s for 128. `--parallel`
# on the command line overrides it (pyinfra applies it after this file).
config.PARALLEL = 20 * (os.cpu_count() or 1)

# The user's mistakes get one line and an exit code that says so (a misspelled inventory is an
# error, Ctrl-C exits 130): installed here, before pyinfra reads the inventory.
from ollama_gpu_fix.deploy import cliguard  # noqa: E402

cliguard.install()
