"""xenha-resync-snapshot: protect a DRBD resync target's data with an LVM snapshot.

A resync overwrites the target's blocks in no particular order: until it ends, the
target holds neither its old data nor the new. If the sync source turns out to be the
wrong one (a bad split-brain decision, a source that dies mid-way), the only copy of the
old data is a snapshot taken just before. DRBD runs this program as handlers:

    handlers {
        before-resync-target "/usr/local/sbin/xenha-resync-snapshot before --size 20%";
        after-resync-target  "/usr/local/sbin/xenha-resync-snapshot after";
    }

with DRBD_RESOURCE, DRBD_VOLUME, DRBD_MINOR and DRBD_LL_DISK (the backing device) set.

- before: snapshot the backing LV as `<lv>-before-resync` (size a percentage of the LV or
  an absolute size, checked against the VG's free space). An existing snapshot from an
  interrupted resync is kept: it holds the last consistent data, the LV does not. When
  no snapshot can be made the resync goes ahead unprotected (exit 0, said loudly), or is
  refused with `--require` (a non-zero exit makes DRBD drop the connection).
- after: DRBD calls it when a resync ended; the snapshot is removed only when DRBD reports
  the volume UpToDate, otherwise kept with the way back printed.
- rollback RESOURCE: with the resource down on this node, merge the snapshot back into
  the LV (`lvconvert --merge`): the volume is as it was before the resync.
- status RESOURCE: the snapshots this program keeps for a resource.

The operator-facing lines go to stderr and syslog (daemon facility); DRBD discards a
handler's output.

A non-zero exit of `before` makes DRBD drop the connection, so every failure path has a
deliberate exit code:

    0  done; nothing to do; or `before` without --require when no snapshot can be made
       for any reason (bad --size or options, lvm or drbdsetup missing, lvm failing, an
       internal error): the resync goes ahead unprotected, said loudly
    1  `before --require` without a snapshot; rollback or status failed; run outside DRBD
    2  a command-line error (except `before` without --require, see 0)
    `after --then CMD`: CMD's exit status (127 when it cannot be run, 124 when it timed
       out, 128+N when killed by signal N); cleaning up the snapshot never changes it
"""

import argparse
import os
import sys

from xenha.ocf.log import one_line
from xenha.tools.binaries import ToolNotFound
from xenha.tools.drbd import Drbd, DrbdError
from xenha.tools.lvm import Lvm, LvmError
from xenha.tools.lvm_report import LogicalVolume

SUFFIX = "-before-resync"
TIMEOUT = 60.0
RC_REFUSED = 1
RC_USAGE = 2
RC_TIMED_OUT = 124
RC_CANNOT_RUN = 127
UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
DIGITS = "0123456789"
MAX_BYTES = 1 << 60


class HandlerError(Exception):
    pass


def say(message: str, error: bool = False) -> None:
    message = one_line(message)   # odd bytes from the environment never make it fail
    try:   # (run by DRBD's kernel it has a stderr only through its launcher: xenha.stdio)
        sys.stderr.write(f"xenha-resync-snapshot: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    try:
        import syslog
        syslog.openlog("xenha-resync-snapshot", syslog.LOG_PID, syslog.LOG_DAEMON)
        syslog.syslog(syslog.LOG_ERR if error else syslog.LOG_NOTICE, message)
    except (OSError, ValueError):
        pass


def why(problem: BaseException) -> str:
    """A failure in one line for the operator."""
    if isinstance(problem, ToolNotFound):
        return f"{problem.name} is not installed (or not on PATH)"
    if isinstance(problem, (HandlerError, LvmError, DrbdError)):
        return str(problem)
    return f"internal error: {type(problem).__name__}: {problem}"


def _decimal(text: str) -> bool:
    whole, _dot, fraction = text.partition(".")
    return bool(whole) and all(c in DIGITS for c in whole) and all(c in DIGITS for c in fraction) \
        and not (_dot and not fraction)


def parse_size(text: str, origin_bytes: int, extent_bytes: int) -> int:
    """Bytes for the snapshot: "N%" of the origin, or N with an optional k/m/g/t suffix
    (binary units, lvm's convention), rounded up to whole extents. N is a plain decimal
    number (no sign, exponent, nan or inf); HandlerError for anything else."""
    raw = text
    text = text.strip().lower()
    if text.endswith("%"):
        number, factor = text[:-1], None
    elif text[-1:] in UNITS:
        number, factor = text[:-1], UNITS[text[-1:]]
    else:
        number, factor = text, 1
    if not _decimal(number):
        raise HandlerError(f"cannot understand size {raw!r} (use e.g. 20% or 512M)")
    value = float(number)
    wanted = origin_bytes * value / 100.0 if factor is None else value * factor
    if wanted <= 0:
        raise HandlerError(f"size {raw!r} must be positive")
    if wanted > MAX_BYTES:   # also what float() makes of hundreds of digits: inf
        raise HandlerError(f"size {raw!r} is larger than any volume group")
    if extent_bytes <= 0:
        raise HandlerError(f"the volume group reports an extent size of {extent_bytes}")
    extents = -(-int(wanted) // extent_bytes)
    return extents * extent_bytes


class Volume:
    """The backing LV of one DRBD volume, and its snapshot."""

    def __init__(self, lvm: Lvm, resource: str, volume: str, backing: str):
        self.lvm = lvm
        self.resource = resource
        self.volume = volume
        self.backing = backing
        self.lv = self.find_lv(backing)
        self.snapshot_name = f"{self.lv.name}{SUFFIX}" if self.lv else None

    def find_lv(self, device: str) -> LogicalVolume | None:
        return self.lvm.logical_volume_at(device, TIMEOUT)

    def snapshot(self) -> LogicalVolume | None:
        volumes = self.lvm.logical_volumes(self.lv.vg, [self.snapshot_name], TIMEOUT)
        return volumes[0] if volumes else None


def backing_device(resource: str, volume: str, environ, conf: str | None = None) -> str:
    disk = environ.get("DRBD_LL_DISK", "")
    if disk:
        return disk
    try:
        return Drbd(resource, conf or handler_conf(environ), env=environ).backing_device(volume, TIMEOUT)
    except DrbdError as error:
        raise HandlerError(str(error)) from None


def handler_conf(environ) -> str | None:
    """The configuration drbdadm ran the handler from (it exports DRBD_CONF): 8.4's state
    queries go through drbdadm, which must read the same file."""
    conf = environ.get("DRBD_CONF", "")
    return conf if conf.startswith("/") else None


def drbd_state(resource: str, environ):
    """The resource on this node (None: not up, or no DRBD module loaded), by the driver's
    version-independent state(): DRBD 8.4's drbdsetup has no `status --json`."""
    drbd = Drbd(resource, handler_conf(environ), env=environ)
    if drbd.detect_version(TIMEOUT) is None:
        if not drbd.drbdsetup.installed():
            raise ToolNotFound("drbdsetup")
        return None
    return drbd.state(TIMEOUT)


def volume_up_to_date(resource: str, volume: str, environ) -> bool | None:
    """Whether DRBD reports this node's volume UpToDate (None: cannot tell)."""
    try:
        state = drbd_state(resource, environ)
    except (DrbdError, ToolNotFound) as problem:
        say(f"cannot ask DRBD whether {resource}/{volume} is UpToDate: {why(problem)}", error=True)
        return None
    if state is None:
        return None
    for device in state.devices.values():
        if str(device.volume) == str(volume):
            return device.disk == "UpToDate"
    return None


def before(args, environ) -> int:
    """before-resync-target: refuses the resync (non-zero) only with --require."""
    resource, volume = drbd_identity(environ)
    try:
        return take_snapshot(args, environ, resource, volume)
    except Exception as problem:   # deliberate: any failure here must not drop DRBD's connection
        return without_snapshot(args, why(problem))


def without_snapshot(args, reason: str) -> int:
    if args.require:
        say(f"{reason}; refusing the resync (--require)", error=True)
        return RC_REFUSED
    say(f"{reason}; the resync goes ahead UNPROTECTED", error=True)
    return 0


def take_snapshot(args, environ, resource: str, volume: str) -> int:
    lvm = Lvm(env=environ)
    target = Volume(lvm, resource, volume, backing_device(resource, volume, environ))
    if target.lv is None:
        say(f"{target.backing} of {resource}/{volume} is not an LVM logical volume: no snapshot")
        return 0
    origin = target.lv.full_name
    existing = target.snapshot()
    if existing is not None:
        say(f"keeping {existing.full_name}: it is from a resync that did not finish and holds the last "
            f"consistent data of {origin}")
        return 0
    group = lvm.volume_group(target.lv.vg, TIMEOUT)
    if group is None:
        raise HandlerError(f"volume group {target.lv.vg} of {origin} is not visible to lvm")
    size = parse_size(args.size, target.lv.size or 0, group.extent_size or 4 << 20)
    if group.free is not None and size > group.free:
        raise HandlerError(f"cannot snapshot {origin} before the resync of {resource}/{volume}: "
                           f"{size >> 20} MiB needed, {group.name} has {group.free >> 20} MiB free")
    lvm.create_snapshot(target.lv, target.snapshot_name, size, TIMEOUT)
    say(f"snapshot {target.lv.vg}/{target.snapshot_name} ({size >> 20} MiB) of {origin} taken before the "
        f"resync of {resource}/{volume}")
    return 0


def after(args, environ) -> int:
    resource, volume = drbd_identity(environ)
    try:
        remove_after_resync(environ, resource, volume)
    except Exception as problem:   # deliberate: cleaning up never changes the outcome
        say(f"after the resync: {why(problem)}; the snapshot (if any) is kept", error=True)
    words = args.then.split()
    if not words:
        return 0
    # DRBD 8.4 has one after-resync-target hook: the unfence script runs from here.
    from xenha.tools.hook import run_hook

    try:
        result = run_hook(words, TIMEOUT, env=environ)
    except ToolNotFound:
        say(f"--then: {words[0]} not found or not executable", error=True)
        return RC_CANNOT_RUN
    except OSError as error:
        say(f"--then: cannot run {words[0]}: {error.strerror or error}", error=True)
        return RC_CANNOT_RUN
    if result.last_words:
        say(f"{args.then}: {result.last_words}")
    if result.timed_out:
        say(f"--then: {words[0]} did not finish within {TIMEOUT:.0f}s", error=True)
        return RC_TIMED_OUT
    if result.returncode < 0:
        say(f"--then: {words[0]} was killed by signal {-result.returncode}", error=True)
        return 128 - result.returncode
    return result.returncode


def remove_after_resync(environ, resource: str, volume: str) -> None:
    lvm = Lvm(env=environ)
    target = Volume(lvm, resource, volume, backing_device(resource, volume, environ))
    if target.lv is None or target.snapshot() is None:
        return
    snap = f"{target.lv.vg}/{target.snapshot_name}"
    if volume_up_to_date(resource, volume, environ) is not True:
        say(f"resync of {resource}/{volume} did not end UpToDate: keeping {snap}; to return to the data "
            f"before the resync: xenha-resync-snapshot rollback {resource} --volume {volume}", error=True)
        return
    try:
        lvm.remove_volume(target.lv.vg, target.snapshot_name, TIMEOUT)
    except LvmError as problem:
        say(f"resync of {resource}/{volume} done, but {snap} could not be removed: {problem}", error=True)
        return
    say(f"resync of {resource}/{volume} done and UpToDate: removed {snap}")


def rollback(args, environ) -> int:
    resource, volume = args.resource, str(args.volume)
    if drbd_state(resource, environ) is not None:
        raise HandlerError(f"{resource} is up on this node; take it down first (cluster: pcs resource ban / "
                           f"disable; by hand: drbdadm down {resource})")
    lvm = Lvm(env=environ)
    target = Volume(lvm, resource, volume, backing_device(resource, volume, environ, args.drbd_conf))
    if target.lv is None:
        raise HandlerError(f"the backing device {target.backing} is not an LVM logical volume")
    if target.snapshot() is None:
        raise HandlerError(f"no snapshot {target.lv.vg}/{target.snapshot_name} to roll back to")
    if not args.yes:
        raise HandlerError(f"this replaces the data of {target.lv.full_name} with the snapshot taken before the "
                           f"resync; run again with --yes")
    try:
        lvm.merge_snapshot(target.lv.vg, target.snapshot_name, TIMEOUT)
    except LvmError as problem:
        raise HandlerError(f"merge failed: {problem}") from None
    say(f"{target.lv.full_name} is back to its state before the resync of {resource}/{volume}. Its DRBD "
        f"metadata went back too: when the resource comes up it will sync from the peer again unless this "
        f"node is made the sync source (e.g. drbdadm invalidate-remote {resource} once connected).")
    return 0


def status(args, environ) -> int:
    resource, volume = args.resource, str(args.volume)
    target = Volume(Lvm(env=environ), resource, volume, backing_device(resource, volume, environ, args.drbd_conf))
    snap = target.snapshot() if target.lv else None
    print(f"{resource}/{volume}: " + (f"snapshot {snap.full_name} of {target.lv.full_name}" if snap else "no snapshot"))
    return 0


def drbd_identity(environ) -> tuple[str, str]:
    resource = environ.get("DRBD_RESOURCE", "")
    if not resource:
        raise HandlerError("DRBD_RESOURCE is not set: this command is run by DRBD as a handler")
    return resource, environ.get("DRBD_VOLUME", "") or "0"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="xenha-resync-snapshot",
                                     description="LVM snapshots that protect DRBD resync targets.")
    commands = parser.add_subparsers(dest="command", required=True)
    run_before = commands.add_parser("before", help="before-resync-target handler")
    run_before.add_argument("--size", default="20%", help="snapshot size: N%% of the LV or e.g. 512M (default 20%%)")
    run_before.add_argument("--require", action="store_true",
                            help="refuse the resync (non-zero exit) when no snapshot can be made")
    run_after = commands.add_parser("after", help="after-resync-target handler")
    run_after.add_argument("--then", default="", help="command to run afterwards (DRBD 8.4's unfence script)")
    for name in ("rollback", "status"):
        sub = commands.add_parser(name)
        sub.add_argument("resource")
        sub.add_argument("--volume", default="0")
        sub.add_argument("--drbd-conf", default=None, help="DRBD configuration (default: drbdadm's)")
        if name == "rollback":
            sub.add_argument("--yes", action="store_true", help="really replace the LV's data")
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as usage:   # argparse has printed the usage error
        if usage.code and argv[:1] == ["before"] and "--require" not in argv:
            say("cannot understand the handler's command line; the resync goes ahead UNPROTECTED", error=True)
            return 0
        return RC_USAGE if usage.code else 0
    environ = dict(os.environ)
    try:
        return {"before": before, "after": after, "rollback": rollback, "status": status}[args.command](args, environ)
    except Exception as problem:   # deliberate: a message and an exit code, never a traceback
        say(why(problem), error=True)
        return RC_REFUSED
