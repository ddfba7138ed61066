"""The lab: booted systemd-nspawn hosts over real SSH, one per failure mode (issue 3)."""
