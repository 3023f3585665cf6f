"""Odd bytes, FIFOs and files that are not what they should be never change an agent's
answer nor hang it (issue 9 §5): the OCF layer's readers, records and log."""

import io
import os
import threading

import pytest
from hypothesis import given, settings, strategies as st

from xenha.ocf.files import NotRegularFile, check_regular, read_regular
from xenha.ocf.log import AgentLog, one_line
from xenha.ocf.state import ResourceRecord
from xenha.tools.host import Host, sign_of_xen


def never_blocks(function, *args):
    """Run `function`; fail (instead of hanging the suite) if it blocks."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function(*args)
        except BaseException as error:   # handed to the test below
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), f"{function.__name__} blocked"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# --- files an agent is given ---------------------------------------------------------------------
def test_a_fifo_a_directory_and_a_device_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "config"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "a FIFO"), (tmp_path, "a directory"), ("/dev/null", "a character device")):
        with pytest.raises(NotRegularFile, match=f"not a regular file \\({kind}\\)"):
            never_blocks(read_regular, str(path))
        with pytest.raises(NotRegularFile):
            never_blocks(check_regular, str(path))


def test_a_regular_file_is_read_up_to_its_limit(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_regular(str(path)) == b"x" * 100
    with pytest.raises(NotRegularFile, match="larger than 99 bytes"):
        read_regular(str(path), limit=99)
    with pytest.raises(FileNotFoundError):
        read_regular(str(tmp_path / "missing"))
    link = tmp_path / "link"
    link.symlink_to(path)
    assert read_regular(str(link)) == b"x" * 100, "a symlink to a file is that file"


# --- records in HA_RSCTMP ------------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x01", b"name=ok\n\x80\n", b"name=a\x00b\n", b"garbage\n",
                                     b"=value\n", b"name=\x1b[31mred\n", b"name=x\xe2\x80\xa8y\n"])
def test_a_record_that_is_not_ours_counts_as_absent(tmp_path, content):
    record = ResourceRecord(str(tmp_path), "xen-domain", "vm")
    with open(record.path, "wb") as handle:
        handle.write(content)
    assert never_blocks(record.read) == {}


def test_a_record_that_is_not_a_file_counts_as_absent_and_is_replaced(tmp_path):
    record = ResourceRecord(str(tmp_path), "xen-domain", "vm")
    os.mkfifo(record.path)
    assert never_blocks(record.read) == {}
    assert record.write({"name": "vm"}) and record.read() == {"name": "vm"}


def test_a_record_never_fails_its_caller(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    record = ResourceRecord(str(blocked), "drbd-resource", "r0")       # HA_RSCTMP is a file
    assert record.read() == {} and record.write({"score": "1"}) is False
    record.remove()
    odd = ResourceRecord(str(tmp_path), "xen-domain", "vm\udcff")        # odd bytes in the instance
    assert odd.write({"name": "vm\udcff", "ok": "1"}) and odd.read() == {"ok": "1"}


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=4))
def test_what_a_record_gives_back_is_what_was_written_or_nothing(tmp_path_factory, values):
    record = ResourceRecord(str(tmp_path_factory.mktemp("rec")), "t", "i")
    record.write(values)
    back = record.read()
    assert all(values.get(key) == value for key, value in back.items())


# --- logging never changes an answer -----------------------------------------------------------
ODD = "stop \udcff\udcfe\x00\x1b[2J\u2028 done"


def test_log_lines_take_any_text(tmp_path):
    stream = io.StringIO()
    log = AgentLog("xen-domain(vm\udcff)", {"HA_LOGFACILITY": "daemon", "HA_LOGFILE": str(tmp_path / "log"),
                                             "HA_debug": "1"}, stream)
    for emit in (log.debug, log.info, log.warning, log.error, log.exit_reason):
        emit(ODD)
    written = stream.getvalue() + (tmp_path / "log").read_text(encoding="utf-8")
    assert "stop \\udcff\\udcfe\\x00\\x1b[2J done" in written   # U+2028 is a line break: a space
    assert "\x00" not in written and "\x1b" not in written


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.text())
def test_one_line_is_printable_and_encodable(text):
    line = one_line(text)
    assert "\n" not in line and line.isprintable() or line == ""
    line.encode("utf-8")


# --- the host as tools/host.py sees it ----------------------------------------------------------------
def test_host_paths_never_block_and_patterns_match_versioned_directories(tmp_path):
    (tmp_path / "sys/hypervisor").mkdir(parents=True)
    os.mkfifo(tmp_path / "sys/hypervisor/type")
    host = Host({"XENHA_HOST_ROOT": str(tmp_path)})
    assert never_blocks(sign_of_xen, host) is None
    (tmp_path / "usr/lib/xen-4.17/bin").mkdir(parents=True)
    (tmp_path / "usr/lib/xen-4.17/bin/xl").write_text("")
    assert sign_of_xen(host) == "xl is installed at /usr/lib/xen-4.17/bin/xl"
    assert Host({}).root == "" and Host({"XENHA_HOST_ROOT": "/x/"}).root == "/x"
