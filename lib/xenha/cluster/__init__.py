"""The cluster description: one TOML file naming nodes, VMs, volumes and policies.

`description` loads and validates it into typed values; `allocation` gives each VM its
DRBD minor and port, stably; `xenha.render` turns the result into DRBD resource files,
xl domain configs and the Pacemaker configuration.
"""

import os


def examples_dir() -> str:
    """The example descriptions: installed next to the package (`make install`), or the
    repository's `cluster-config/examples` when running from a checkout."""
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    installed = os.path.join(package_parent, "examples")
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(package_parent), "cluster-config", "examples")
