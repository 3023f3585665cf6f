import os
import time

import pytest

from xenha.tools import runner


def test_captures_output_and_exit_code():
    result = runner.run(["sh", "-c", "echo out; echo err >&2; exit 3"], 5)
    assert (result.returncode, result.stdout, result.stderr, result.timed_out) == (3, "out\n", "err\n", False)
    assert result.describe() == "sh exited with 3: err"


def test_locale_is_forced_to_c():
    assert runner.run(["sh", "-c", "echo $LC_ALL"], 5).stdout == "C\n"


def test_stdin_is_fed():
    assert runner.run(["cat"], 5, stdin=b"hello").stdout == "hello"


def test_stdin_defaults_to_devnull():
    assert runner.run(["cat"], 5).stdout == ""


def test_missing_tool_raises():
    with pytest.raises(runner.ToolNotFound):
        runner.run(["no-such-tool-xenha"], 5)


def test_timeout_kills_the_whole_process_group(tmp_path):
    marker = tmp_path / "child.pid"
    started = time.monotonic()
    result = runner.run(["sh", "-c", f"sleep 60 & echo $! > {marker}; wait"], 0.5)
    assert result.timed_out and time.monotonic() - started < 5
    child = int(marker.read_text())
    time.sleep(0.1)
    state = None
    try:
        with open(f"/proc/{child}/stat") as handle:
            state = handle.read().split()[2]
    except FileNotFoundError:
        pass
    assert state in (None, "Z"), "the grandchild must die with the group"


def test_grandchild_holding_pipes_does_not_block(tmp_path):
    started = time.monotonic()
    result = runner.run(["sh", "-c", "(sleep 5 &) ; echo done"], 10)
    assert result.ok and result.stdout == "done\n"
    assert time.monotonic() - started < 3


def test_signal_death_is_negative():
    assert runner.run(["sh", "-c", "kill -9 $$"], 5).returncode == -9


def test_sigpipe_is_default_in_children():
    # Python ignores SIGPIPE; a child must not inherit that (`yes | head` would spin).
    result = runner.run(["sh", "-c", "yes | head -1"], 5)
    assert result.ok and result.stdout == "y\n"


def test_which(tmp_path):
    tool = tmp_path / "t"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert runner.which("t", str(tmp_path)) == str(tool)
    assert runner.which(str(tool)) == str(tool)
    assert runner.which("t", "/nonexistent") is None
    assert runner.which(str(tmp_path)) is None
    os.chmod(tool, 0o644)
    assert runner.which("t", str(tmp_path)) is None
