"""What the hostile-environment matrices of the three agents share (issue 9): the table
check, the verdict on one outcome, and the host and PATH a case presents."""

import os
import shutil

from xenha.ocf import codes

# nothing hostile may make an agent take this long (a FIFO read would block until killed)
HANG_SECONDS = 10.0
# a PATH with the basic commands and none of the tools (lvm, drbdadm, drbdsetup, xl, dmsetup)
NO_TOOLS = "/usr/bin:/bin"


def assert_table_complete(expected: dict, actions) -> None:
    """Every problem expects a code for every action and nothing else (a misspelt
    action in a table would never be checked)."""
    for problem, codes_by_action in expected.items():
        assert sorted(codes_by_action) == sorted(actions), problem


def assert_outcome(rc: int, reason: str | None, stderr: str, seconds: float, expected: int) -> None:
    assert rc == expected, stderr
    if rc not in (codes.SUCCESS, codes.NOT_RUNNING, codes.RUNNING_PROMOTED):
        assert reason, "every failure carries an exit reason"
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert seconds < HANG_SECONDS, "nothing hostile may make the agent hang"


def host_root(path, *signs) -> str:
    """A host root for tools/host.py (XENHA_HOST_ROOT) holding only `signs`: directories,
    or executables for paths with a `bin/` component."""
    os.makedirs(path, exist_ok=True)
    for sign in signs:
        target = os.path.join(path, sign)
        if "bin/" in sign:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as handle:
                handle.write("#!/bin/sh\n")
            os.chmod(target, 0o755)
        else:
            os.makedirs(target, exist_ok=True)
    return str(path)


def path_with_only(bindir, search: str, *tools) -> str:
    """A PATH with just `tools` (found on `search`, as the node has them) and the basic commands."""
    os.makedirs(bindir, exist_ok=True)
    for tool in tools:
        os.symlink(shutil.which(tool, path=search), os.path.join(bindir, tool))
    return f"{bindir}:{NO_TOOLS}"
