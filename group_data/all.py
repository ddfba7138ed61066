"""Host data defaults for every host. Override per group (group_data/<group>.py), per host in the
inventory, or on the command line (`--data report_dir=/tmp/reports`)."""

# Where deploys/diagnose.py writes `<report_dir>/<host>.json`, on the CONTROLLER (relative paths
# are relative to the directory pyinfra runs in, normally the repo root).
report_dir = "reports"
