"""Finding an executable on PATH, and the error for one that is not installed.

Below `runner` and `tool` (both use it); imports nothing of ours.
"""


import posix


class ToolNotFound(Exception):
    """The command is not installed (not on PATH, or not executable).

    Defined here rather than in `runner` so that callers of any driver can tell "the
    tool is missing" apart from "the tool failed" without importing the runner.
    """

    def __init__(self, name: str):
        super().__init__(f"{name}: command not found")
        self.name = name


def _is_executable_file(path: str) -> bool:
    try:
        mode = posix.stat(path).st_mode
    except OSError:
        return False
    return (mode & 0o170000) == 0o100000 and posix.access(path, posix.X_OK)


def which(name: str, path: str | None = None) -> str | None:
    """The path of an executable, like `command -v`; `path` defaults to this process's PATH."""
    if "/" in name:
        return name if _is_executable_file(name) else None
    if path is None:
        path = posix.environ.get(b"PATH", b"").decode("utf-8", "surrogateescape")
    for directory in path.split(":"):
        candidate = f"{directory or '.'}/{name}"
        if _is_executable_file(candidate):
            return candidate
    return None
