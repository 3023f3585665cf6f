"""The cluster description: one TOML file naming nodes, VMs, volumes and policies.

`description` loads and validates it into typed values; `allocation` gives each VM its
DRBD minor and port, stably; `xenha.render` turns the result into DRBD resource files,
xl domain configs and the Pacemaker configuration.
"""
