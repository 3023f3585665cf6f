"""The block-device holders registry of a simulated node: who holds which block device
open (what /sys/block/<dev>/holders and open counts tell on a real host). The
simulated DRBD kernel writes it (attaching a backing disk holds it, detaching releases
it); the simulated LVM reads it (an LV under DRBD is open and refuses deactivation);
`LvmWorld.hold()/release()` write it for tests.

A directory (`XENHA_SIM_HOLDERS`, default /run/xenha-sim/holders: the node's volatile
state) with one file per held device, named after the device path with "/" replaced by
"!", holding the holder's name (e.g. "drbd1") once per open. A holder whose name looks like a kernel
block device (drbdN, dm-N, mdN, loopN, ...) is a sysfs *holder* of the device (real
DRBD 9 links itself as one); any other name is a plain opener (open count only).

Standard library `os` only: dmsetup reads it on every monitor call.
"""

import os

DEFAULT_DIR = "/run/xenha-sim/holders"
ENV_DIR = "XENHA_SIM_HOLDERS"
BLOCK_HOLDER_PREFIXES = ("drbd", "dm-", "md", "loop", "nbd", "bcache", "zram")


def registry_dir(environ=None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get(ENV_DIR) or DEFAULT_DIR


def hold(directory: str, device: str, holder: str, opens: int = 1) -> None:
    """Register `holder` as holding `device` open `opens` times (written all or nothing):
    DRBD with internal meta-data opens its backing device twice, for the data and for the
    meta-data (the real kernel's open count is 2, tests/sim/real_samples/lvm_dm.txt)."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, device.replace("/", "!"))
    tmp = "%s.tmp%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write((holder + "\n") * max(opens, 1))
    os.replace(tmp, path)


def release(directory: str, device: str) -> None:
    try:
        os.unlink(os.path.join(directory, device.replace("/", "!")))
    except OSError:
        pass


def listing(directory: str) -> list:
    """[(device path, holder name)] of the registry, one entry per open."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    result = []
    for entry in entries:
        if ".tmp" in entry:
            continue
        try:
            with open(os.path.join(directory, entry), encoding="utf-8") as handle:
                opens = handle.read().split()
        except OSError:
            continue
        result += [(entry.replace("!", "/"), holder) for holder in opens or ["?"]]
    return result


def is_block_holder(name: str) -> bool:
    """Whether a holder name stands for a kernel block device (a sysfs holder)."""
    return name.startswith(BLOCK_HOLDER_PREFIXES)
