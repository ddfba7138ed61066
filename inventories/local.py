"""This machine only: `pyinfra inventories/local.py deploys/diagnose.py` (same as `@local`)."""

local = ["@local"]
