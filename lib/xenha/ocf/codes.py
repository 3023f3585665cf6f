"""OCF exit codes (OCF 1.1 plus Pacemaker's degraded codes) and the error that carries one.

Plain integers rather than an IntEnum: importing `enum` costs several milliseconds on
every monitor, and Pacemaker only ever sees the number.
"""

SUCCESS = 0
ERR_GENERIC = 1
ERR_ARGS = 2
ERR_UNIMPLEMENTED = 3
ERR_PERM = 4
ERR_INSTALLED = 5
ERR_CONFIGURED = 6
NOT_RUNNING = 7
RUNNING_PROMOTED = 8
FAILED_PROMOTED = 9
DEGRADED = 190
DEGRADED_PROMOTED = 191

NAMES = {
    SUCCESS: "OCF_SUCCESS",
    ERR_GENERIC: "OCF_ERR_GENERIC",
    ERR_ARGS: "OCF_ERR_ARGS",
    ERR_UNIMPLEMENTED: "OCF_ERR_UNIMPLEMENTED",
    ERR_PERM: "OCF_ERR_PERM",
    ERR_INSTALLED: "OCF_ERR_INSTALLED",
    ERR_CONFIGURED: "OCF_ERR_CONFIGURED",
    NOT_RUNNING: "OCF_NOT_RUNNING",
    RUNNING_PROMOTED: "OCF_RUNNING_PROMOTED",
    FAILED_PROMOTED: "OCF_FAILED_PROMOTED",
    DEGRADED: "OCF_DEGRADED",
    DEGRADED_PROMOTED: "OCF_DEGRADED_PROMOTED",
}


def name(code: int) -> str:
    return NAMES.get(code, f"rc={code}")


class OcfError(Exception):
    """An action's outcome other than success, with the one-line reason for Pacemaker.

    `code` is the OCF exit code; `reason` becomes the `ocf-exit-reason:` line.
    """

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"OcfError({name(self.code)}, {self.reason!r})"
