"""Reading the files an agent is given (configuration files, its own records) without
ever blocking on them.

`open()` of a FIFO waits for a writer, a read from a character device may never end and
a huge file costs time the operation does not have: a path that should name a file is
opened non-blocking, checked to be a regular file with `fstat` (no race with a rename),
and read up to a limit. Anything else is an `OSError` with a reason that reads well in
an exit reason ("not a regular file (a FIFO)").
"""

import posix

S_IFMT = 0o170000
S_IFREG = 0o100000
_KINDS = {0o010000: "a FIFO", 0o020000: "a character device", 0o040000: "a directory",
          0o060000: "a block device", 0o140000: "a socket"}
DEFAULT_LIMIT = 1 << 20
EINVAL = 22
EFBIG = 27


class NotRegularFile(OSError):
    """The path names something other than a regular file (or one too large)."""


def _open_regular(path: str):
    """(fd, stat) of `path` opened read-only without blocking; NotRegularFile unless regular."""
    fd = posix.open(path, posix.O_RDONLY | posix.O_NONBLOCK | posix.O_NOCTTY | posix.O_CLOEXEC)
    try:
        info = posix.fstat(fd)
        kind = info.st_mode & S_IFMT
        if kind != S_IFREG:
            raise NotRegularFile(EINVAL, f"not a regular file ({_KINDS.get(kind, 'unknown type')})", path)
    except BaseException:
        posix.close(fd)
        raise
    return fd, info


def check_regular(path: str) -> None:
    """OSError (FileNotFoundError, PermissionError, NotRegularFile...) unless `path` is
    a regular file this process can open for reading."""
    fd, _info = _open_regular(path)
    posix.close(fd)


def read_regular(path: str, limit: int = DEFAULT_LIMIT) -> bytes:
    """The content of the regular file `path`; NotRegularFile when it is not one or holds
    more than `limit` bytes, other OSErrors as open/read raise them."""
    fd, info = _open_regular(path)
    try:
        if info.st_size > limit:
            raise NotRegularFile(EFBIG, f"larger than {limit} bytes", path)
        chunks, total = [], 0
        while True:
            data = posix.read(fd, 65536)
            if not data:
                return b"".join(chunks)
            total += len(data)
            if total > limit:   # grew while we read it
                raise NotRegularFile(EFBIG, f"larger than {limit} bytes", path)
            chunks.append(data)
    finally:
        posix.close(fd)
