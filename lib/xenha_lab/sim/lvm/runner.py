"""The real lvm2 underneath the simulated commands: run with activation disabled, its
device-mapper noise filtered out, its reports and VG metadata read and edited.

Every command of the simulator runs the real binary with the user's arguments and
`activation=0` forced through `--config` (merged into the user's own `--config`, which
lvm accepts only once); see `xenha_lab.sim.lvm.lvm`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from xenha_lab.sim.lvm import metadata
from xenha_lab.sim.lvm.devmapper import find_binary

LVM_CANDIDATES = ("/usr/sbin/lvm", "/sbin/lvm")
FORCED_CONFIG = "global/activation=0"
NOISE = (
    "WARNING: Activation disabled. No device-mapper interaction will be attempted.",
    "/dev/mapper/control: open failed: No such device",
    "Failure to communicate with kernel device-mapper driver.",
    "Check that device-mapper is available in the kernel.",
    "WARNING: Ignoring duplicate config value: global/activation",
    "WARNING: Ignoring duplicate config value: activation",
)
NOISE_PREFIXES = (
    "Incompatible libdevmapper ",
    "WARNING: Failed to check for active volumes in volume group",
    "/sbin/modprobe",
)


def lvm_binary() -> str:
    return os.environ.get("XENHA_SIM_REAL_LVM") or find_binary(LVM_CANDIDATES)


def filter_stderr(text: str, extra=()) -> str:
    kept = []
    for line in text.splitlines(keepends=True):
        bare = line.strip()
        if bare in NOISE or bare.startswith(NOISE_PREFIXES) or bare in extra:
            continue
        kept.append(line)
    return "".join(kept)


def split_config(args):
    """(args without --config, the user's --config value or None)."""
    rest, config, i = [], None, 0
    while i < len(args):
        arg = args[i]
        if arg == "--config" and i + 1 < len(args):
            config = args[i + 1] if config is None else config + " " + args[i + 1]
            i += 2
            continue
        if arg.startswith("--config="):
            value = arg[len("--config="):]
            config = value if config is None else config + " " + value
            i += 1
            continue
        rest.append(arg)
        i += 1
    return rest, config


def count_config(args) -> int:
    return sum(1 for a in args if a == "--config" or a.startswith("--config="))


def merged_config(user_config):
    return FORCED_CONFIG if not user_config else user_config + " " + FORCED_CONFIG


def run_lvm(command: str, args, user_config=None, input_text=None, stdin=None,
            extra_noise=()) -> subprocess.CompletedProcess:
    """The real `lvm COMMAND ARGS --config '<user> global/activation=0'`."""
    argv = [lvm_binary(), command, *args, "--config", merged_config(user_config)]
    env = dict(os.environ)
    env.setdefault("LVM_SUPPRESS_FD_WARNINGS", "1")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                          input=input_text, stdin=None if input_text is not None else stdin)
    proc.stderr = filter_stderr(proc.stderr, extra_noise)
    return proc


def passthrough(command: str, args) -> int:
    if count_config(args) > 1:
        # let the real tool say `Option --config may not be repeated.`
        argv = [lvm_binary(), command, *args]
        proc = subprocess.run(argv, capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(filter_stderr(proc.stderr))
        return proc.returncode
    rest, user_config = split_config(args)
    proc = run_lvm(command, rest, user_config, stdin=sys.stdin)
    sys.stderr.write(proc.stderr)
    sys.stdout.write(proc.stdout)
    return proc.returncode


def report_json(command: str, args, user_config=None):
    """Rows of a real JSON report (first report section) and the process."""
    proc = run_lvm(command, ["--reportformat", "json", *args], user_config)
    rows = []
    try:
        data = json.loads(proc.stdout) if proc.stdout.strip() else {}
        for section in data.get("report", []):
            for rows_ in section.values():
                rows.extend(rows_)
    except ValueError:
        pass
    return rows, proc


def vg_metadata(vg_name: str, user_config=None) -> metadata.VG | None:
    """The VG's metadata as real lvm2 has it (vgcfgbackup to a private file)."""
    fd, path = tempfile.mkstemp(prefix="xenha-sim-vg-", suffix=".vg")
    os.close(fd)
    try:
        proc = run_lvm("vgcfgbackup", ["-f", path, vg_name], user_config)
        if proc.returncode != 0:
            return None
        with open(path, encoding="utf-8") as handle:
            return metadata.VG(metadata.parse(handle.read()))
    except (OSError, ValueError):
        return None
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def config_values(user_config=None) -> dict:
    """activation/* settings and global/locking_dir in force for this command."""
    argv = [lvm_binary(), "lvmconfig", "--mergedconfig", "--config", merged_config(user_config),
            "activation", "global/locking_dir"]
    proc = subprocess.run(argv, capture_output=True, text=True,
                          env={**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1"})
    values: dict = {}
    try:
        root = metadata.parse(proc.stdout)
    except (ValueError, IndexError):
        return values
    activation = root.section("activation")
    if activation is not None:
        for key, value in activation.items:
            values["activation/" + key] = value
    if root.get("locking_dir") is not None:
        values["global/locking_dir"] = root.get("locking_dir")
    return values


def edit_vg(vg_name: str, change, user_config=None):
    """vgcfgbackup -f → change(root section) → vgcfgrestore -f. (ok, stderr text)"""
    fd, path = tempfile.mkstemp(prefix="xenha-sim-edit-", suffix=".vg")
    os.close(fd)
    try:
        proc = run_lvm("vgcfgbackup", ["-f", path, vg_name], user_config)
        if proc.returncode != 0:
            return False, proc.stderr
        with open(path, encoding="utf-8") as handle:
            root = metadata.parse(handle.read())
        change(root)
        header = "contents = \"Text Format Volume Group\"\nversion = 1\n\n"
        body = metadata.Section()
        body.items = [(k, v) for k, v in root.items if k not in ("contents", "version")]
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(header + metadata.format(body))
        proc = run_lvm("vgcfgrestore", ["-f", path, vg_name], user_config)
        return proc.returncode == 0, proc.stderr
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
