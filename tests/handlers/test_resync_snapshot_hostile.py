"""xenha-resync-snapshot never breaks replication by accident (issue 9 §7): every failure
path has a deliberate exit code and a message, never a traceback; `before` refuses the
resync (non-zero, which makes DRBD drop the connection) only with --require."""

import os
import shutil
import signal
import subprocess

import pytest
from hypothesis import example, given, settings, strategies as st

from conftest import installed
from test_resync_snapshot import handler, snapshots, world  # noqa: F401  (world is a fixture)
from xenha.handlers.resync_snapshot import HandlerError, parse_size

MIB = 1 << 20
EXTENT = 4 * MIB
LVM_TOOLS = ("lvm", "lvs", "vgs", "lvcreate", "lvremove", "lvconvert", "lvchange")


def program():
    return installed(f"{os.environ.get('XENHA_SBINDIR', '/usr/local/sbin')}/xenha-resync-snapshot")


def bare(*args, **env):
    """The handler with a bare environment (PATH without lvm or drbd tools)."""
    base = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "DRBD_RESOURCE": "r0", "DRBD_VOLUME": "0",
            "DRBD_MINOR": "1", "DRBD_LL_DISK": "/dev/vg0/vm_shaolin"}
    base.update(env)
    return subprocess.run([program(), *args], env=base, capture_output=True, timeout=60)


def text(result) -> str:
    return result.stderr.decode("utf-8", "replace")


def no_traceback(result):
    assert "Traceback" not in text(result) and "Error:" not in text(result).replace("error: ", "")


# --- sizes: a plain decimal number, nothing float() would also take ----------------------
@pytest.mark.parametrize("size", ["nan%", "nan", "inf", "-inf%", "infinity", "1e3M", "1e400%", "-5%", "0",
                                  "0%", "", "%", "M", "1.M", ".5G", "1_000M", "0x10M", "١٢%", "12 %", "½G"])
def test_sizes_that_are_not_plain_decimals_are_refused(size):
    with pytest.raises(HandlerError):
        parse_size(size, 64 * MIB, EXTENT)


@pytest.mark.parametrize("size,expected", [("20%", 16 * MIB), ("512M", 512 * MIB), ("1.5g", 1536 * MIB),
                                           ("4097k", 8 * MIB), ("100%", 64 * MIB), (" 10m ", 12 * MIB)])
def test_sizes_round_up_to_whole_extents(size, expected):
    assert parse_size(size, 64 * MIB, EXTENT) == expected


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.text(max_size=12), st.integers(min_value=0, max_value=1 << 44))
@example("nan%", 1 << 30)
@example("inf", 1 << 30)
@example("9" * 400 + "t", 1 << 30)
def test_any_size_text_is_a_whole_number_of_extents_or_refused(size, origin):
    try:
        got = parse_size(size, origin, EXTENT)
    except HandlerError:
        return
    assert got > 0 and got % EXTENT == 0


# --- before: unprotected unless --require ---------------------------------------------------
def test_before_without_lvm_goes_ahead_unprotected_or_refuses_with_require():
    result = bare("before")
    assert result.returncode == 0, text(result)
    assert "lvs is not installed" in text(result) and "UNPROTECTED" in text(result)
    no_traceback(result)
    refused = bare("before", "--require")
    assert refused.returncode == 1 and "refusing the resync (--require)" in text(refused)
    no_traceback(refused)


def test_a_command_line_before_cannot_understand_does_not_drop_the_connection():
    result = bare("before", "--sise", "20%")
    assert result.returncode == 0 and "UNPROTECTED" in text(result)
    assert bare("before", "--sise", "20%", "--require").returncode == 2
    assert bare("frobnicate").returncode == 2


def test_odd_bytes_from_the_environment_never_give_a_traceback():
    result = bare("before", DRBD_RESOURCE="r0\udcff", DRBD_LL_DISK="/dev/\udcfe")
    assert result.returncode == 0 and "UNPROTECTED" in text(result)
    no_traceback(result)


def test_run_outside_drbd_says_so():
    for command in ("before", "after"):
        result = bare(command, DRBD_RESOURCE="")
        assert result.returncode == 1 and "DRBD_RESOURCE is not set" in text(result)


@pytest.mark.parametrize("size", ["nan%", "inf", "-1", "1e9G", "20 %"])
def test_before_with_a_size_it_cannot_use(world, size):  # noqa: F811
    lvm, drbd, vg = world
    result = handler(lvm, drbd, vg, "before", "--size", size)
    assert result.returncode == 0 and "UNPROTECTED" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    refused = handler(lvm, drbd, vg, "before", "--size", size, "--require")
    assert refused.returncode == 1 and "refusing the resync" in refused.stderr
    assert snapshots(lvm, vg) == {}


def only(tmp_path, search, tools):
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for tool in tools:
        os.symlink(shutil.which(tool, path=search), bindir / tool)
    return f"{bindir}:/usr/bin:/bin"


# --- after and rollback without drbdsetup; --then ------------------------------------------
def test_after_without_drbdsetup_keeps_the_snapshot(world, tmp_path):  # noqa: F811
    lvm, drbd, vg = world
    assert handler(lvm, drbd, vg, "before").returncode == 0
    path = only(tmp_path, lvm.env("mk1")["PATH"], LVM_TOOLS)
    result = handler(lvm, drbd, vg, "after", env_extra={"PATH": path})
    assert result.returncode == 0, result.stderr
    assert "drbdsetup is not installed" in result.stderr and "keeping" in result.stderr
    assert "vm_shaolin-before-resync" in snapshots(lvm, vg)
    rollback = handler(lvm, drbd, vg, "rollback", "r0", "--yes", env_extra={"PATH": path})
    assert rollback.returncode == 1 and "drbdsetup is not installed" in rollback.stderr
    assert "Traceback" not in result.stderr + rollback.stderr


def test_then_exit_codes(tmp_path):
    killer = tmp_path / "killer"
    killer.write_text("#!/bin/sh\nkill -9 $$\n")
    killer.chmod(0o755)
    failing = tmp_path / "failing"
    failing.write_text("#!/bin/sh\necho 'unfence: no constraint' >&2\nexit 3\n")
    failing.chmod(0o755)
    missing = bare("after", "--then", str(tmp_path / "nowhere") + " r0")
    assert missing.returncode == 127 and "not found or not executable" in text(missing)
    killed = bare("after", "--then", str(killer))
    assert killed.returncode == 128 + signal.SIGKILL and "killed by signal 9" in text(killed)
    failed = bare("after", "--then", f"{failing} r0")
    assert failed.returncode == 3 and "unfence: no constraint" in text(failed)
    assert bare("after", "--then", "  ").returncode == 0
    for result in (missing, killed, failed):
        no_traceback(result)
