"""xenha: highly available Xen domains on DRBD-replicated LVM volumes, run by Pacemaker.

The package is split so that the OCF agents' import path stays on the standard library
(`xenha.ocf`, `xenha.tools`, `xenha.hypervisor`, `xenha.agents`) while the operator CLI
(`xenha.cli`) may use click and rich.
"""

__version__ = "0.1.0"
