"""What this host has, read from the system itself (/proc, /sys, /dev, the standard
install locations), never from the PATH an agent was given.

A tool missing from an agent's PATH proves nothing about the resource: the domain may
run, DRBD may be Primary, the LV may be open. So when a driver's binary cannot be
found, the driver asks here whether the kernel side of its tool is present (Xen, the
DRBD module, device-mapper): only when none of its signs is there does "not installed"
mean "nothing can be running here".

`XENHA_HOST_ROOT` (tests only; unset on a real node) puts a directory in front of every
path read here, so that a test can present a host with Xen or DRBD on a machine that
has neither, or a host without them on one that has them.
"""

import posix

ROOT_VARIABLE = "XENHA_HOST_ROOT"


class Host:
    """This host's files, seen from `root` ("" on a real node)."""

    __slots__ = ("root",)

    def __init__(self, env=None):
        if env is None:   # this process's environment (`os` costs an import here)
            root = posix.environ.get(ROOT_VARIABLE.encode(), b"").decode("utf-8", "surrogateescape")
        else:
            root = env.get(ROOT_VARIABLE, "") or ""
        self.root = root.rstrip("/")

    def path(self, path: str) -> str:
        return self.root + path

    def exists(self, path: str) -> bool:
        try:
            posix.stat(self.path(path))
        except (OSError, ValueError):
            return False
        return True

    def listdir(self, path: str) -> list[str]:
        try:
            return posix.listdir(self.path(path))
        except (OSError, ValueError):
            return []

    def read_small(self, path: str, limit: int = 65536) -> str:
        """A small kernel or config file ("" when absent, unreadable or not a regular
        file); never blocks on a FIFO."""
        from xenha.ocf.files import read_regular  # not on the LVM monitor's path

        try:
            return read_regular(self.path(path), limit).decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def first_of(self, paths) -> str | None:
        """The first of `paths` that exists here; a path ending in `*/...` stands for
        every directory starting with that prefix (e.g. /usr/lib/xen-*/bin/xl)."""
        for path in paths:
            head, star, tail = path.partition("*")
            if not star:
                if self.exists(path):
                    return path
                continue
            parent, _slash, prefix = head.rpartition("/")
            for entry in sorted(self.listdir(parent or "/")):
                if entry.startswith(prefix) and self.exists(f"{parent}/{entry}{tail}"):
                    return f"{parent}/{entry}{tail}"
        return None


def sign_of_xen(host: Host) -> str | None:
    """Why this host runs Xen or has its toolstack installed (a phrase), or None."""
    if "xen" in host.read_small("/sys/hypervisor/type"):
        return "/sys/hypervisor/type says xen"
    found = host.first_of(("/proc/xen", "/dev/xen"))
    if found:
        return f"{found} exists"
    found = host.first_of(("/usr/sbin/xl", "/usr/local/sbin/xl", "/sbin/xl", "/usr/lib/xen-*/bin/xl",
                           "/usr/lib/xen/bin/xl", "/usr/lib64/xen/bin/xl"))
    if found:
        return f"xl is installed at {found}"
    return None


def sign_of_drbd(host: Host) -> str | None:
    """Why the DRBD kernel module is loaded here (a phrase), or None."""
    found = host.first_of(("/sys/module/drbd", "/proc/drbd"))
    return f"{found} exists" if found else None


# device-mapper's control node alone proves nothing (udev or a static /dev creates it
# whether or not the kernel has device-mapper): mapped devices and sysfs do.
def sign_of_device_mapper(host: Host) -> str | None:
    """Why this host has device-mapper (a phrase), or None."""
    found = host.first_of(("/sys/module/dm_mod", "/sys/class/misc/device-mapper",
                           "/sys/devices/virtual/misc/device-mapper"))
    if found:
        return f"{found} exists"
    mapped = sorted(name for name in host.listdir("/dev/mapper") if name != "control")
    if mapped:
        return f"/dev/mapper/{mapped[0]} exists"
    dm = sorted(name for name in host.listdir("/sys/block") if name.startswith("dm-"))
    if dm:
        return f"/sys/block/{dm[0]} exists"
    return None
