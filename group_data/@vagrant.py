"""Vagrant boxes log in as the `vagrant` user: the probe needs root to read the server's
environment, the journal and dmesg, so escalate with the box's passwordless sudo."""

_sudo = True
