import io

from xenha.ocf.log import EXIT_REASON_MAX, AgentLog


def test_exit_reason_is_one_line_with_prefix_and_at_most_128_chars(tmp_path):
    stream = io.StringIO()
    log = AgentLog("xen-domain(vm)", {"HA_LOGFILE": str(tmp_path / "log")}, stream)
    log.exit_reason("first line\nsecond line " + "x" * 300)
    line = stream.getvalue().splitlines()[-1]
    assert line.startswith("ocf-exit-reason:first line second line")
    assert len(line) - len("ocf-exit-reason:") == EXIT_REASON_MAX
    # the full text is kept in the log file
    assert "x" * 300 in (tmp_path / "log").read_text()


def test_custom_prefix_is_honoured():
    stream = io.StringIO()
    AgentLog("t", {"OCF_EXIT_REASON_PREFIX": "reason>"}, stream).exit_reason("boom")
    assert stream.getvalue() == "reason>boom\n"


def test_debug_only_when_ha_debug_is_the_string_1(tmp_path):
    quiet, loud = io.StringIO(), io.StringIO()
    AgentLog("t", {"HA_debug": "0"}, quiet).debug("hidden")
    AgentLog("t", {"HA_debug": "1", "HA_DEBUGLOG": str(tmp_path / "dbg")}, loud).debug("shown")
    assert quiet.getvalue() == ""
    assert "DEBUG: shown" in loud.getvalue()
    assert "shown" in (tmp_path / "dbg").read_text()


def test_unwritable_log_targets_are_ignored():
    stream = io.StringIO()
    log = AgentLog("t", {"HA_LOGFILE": "/proc/nonexistent/x"}, stream)
    log.info("still fine")
    assert "INFO: still fine" in stream.getvalue()


def test_syslog_when_a_facility_is_configured(monkeypatch):
    sent = []

    class FakeSyslog:
        LOG_PID = 1

        @staticmethod
        def openlog(tag, option, facility):
            sent.append(("open", tag, facility))

        @staticmethod
        def syslog(priority, message):
            sent.append((priority, message))

    import sys
    monkeypatch.setitem(sys.modules, "syslog", FakeSyslog)
    AgentLog("xen-domain(vm)", {"HA_LOGFACILITY": "daemon"}, io.StringIO()).warning("careful")
    assert sent == [("open", "xen-domain(vm)", 24), (4, "WARNING: careful")]
    sent.clear()
    AgentLog("t", {"HA_LOGFACILITY": "none"}, io.StringIO()).warning("x")
    assert sent == []
