"""How the simulated DRBD kernel refuses a request, and how drbdsetup reports it.

Exit codes and message formats are drbdsetup's check_error: 10 for `Failure: (NNN)`
(a drbd_ret_code), 11 for `State change failed: (N)` (a drbd_state_rv), except 17 for
-2, 5 for -16 and 16 for -4; the texts are drbdsetup's error_messages and the
kernel's drbd_strings.c (`strings /usr/sbin/drbdsetup`,
shared/samples/drbd_13_state_change_error_strings.txt).
"""

from __future__ import annotations

# drbd_ret_code texts (drbdsetup error_messages)
ERR = {
    104: "Can not open backing device.",
    107: "Lower device is not a block device.",
    111: "Low.dev. smaller than requested DRBD-dev. size.",
    114: "Lower device is already claimed. This usually means it is mounted.",
    119: "No valid meta-data signature found.\n\n\t==> Use 'drbdadm create-md res' to initialize "
         "meta-data area. <==\n",
    124: "Device is attached to a disk (use detach first)",
    125: "Device has a net-config (use disconnect first)",
    126: "UnknownMandatoryTag",
    127: "Device minor not allocated",
    138: "Device does not have a disk-config",
    151: "Need to be StandAlone",
    154: "Fencing policy resource-and-stonith only with prot B or C allowed",
    158: "Unknown resource",
    159: "Resource still in use (delete all minors first)",
    160: "Minor still configured (down it first)",
    161: "Minor or volume exists already (delete it first)",
    162: "Invalid configuration request",
    164: "Can not clear allow_two_primaries as long as\nthere a primaries on both sides",
}
# drbd_state_rv texts (drbd_strings.c)
SS = {
    -1: "Multiple primaries not allowed by config",
    -2: "Need access to UpToDate data",
    -4: "Can not resync without local disk",
    -5: "Can not resync without remote disk",
    -6: "Refusing to be Outdated while Connected",
    -7: "Refusing to be Primary while peer is not outdated",
    -8: "Can not start OV/resync since it is already active",
    -9: "Can not disconnect a StandAlone device",
    -10: "State change was refused by peer node",
    -11: "Device is diskless, the requested operation requires a disk",
    -12: "Device is held open by someone",
    -13: "Have no net/connection configuration",
    -15: "Need a connection to start verify or resync",
    -16: "Disk state is lower than outdated",
    -18: "In transient state, retry after next state change",
}


class DrbdError(Exception):
    """A failure as drbdsetup's check_error reports it."""

    def __init__(self, kind: str, code: int, text: str | None = None, obj: str | None = None):
        super().__init__(text or "")
        self.kind, self.code, self.text, self.obj = kind, code, text, obj

    def render(self, objname: str) -> tuple[int, str]:
        obj = self.obj if self.obj is not None else objname
        if self.kind == "fail":
            text = self.text if self.text is not None else ERR.get(self.code, "Unknown... maybe API_VERSION mismatch?")
            return 10, f"{obj}: Failure: ({self.code}) {text}\n"
        if self.kind == "state":
            text = SS.get(self.code, "unknown error")
            rc = {-2: 17, -16: 5, -4: 16}.get(self.code, 11)
            return rc, f"{obj}: State change failed: ({self.code}) {text}\n"
        return self.code, (self.text or "")
