"""Agent logging the way Pacemaker and other agents expect it.

- stderr always (pacemaker-execd captures it into the cluster log);
- syslog when `HA_LOGFACILITY` names a facility (not "none");
- `HA_LOGFILE` appended to when set; debug lines only when `HA_debug` is "1", to
  `HA_DEBUGLOG` when set;
- the exit reason: one `ocf-exit-reason:<text>` line on stderr, last one wins,
  Pacemaker keeps 128 characters of it.

A log target that cannot be written (e.g. meta-data run as `nobody`) is skipped
silently, and every line is made writable first (`one_line`): logging must never change
an action's outcome, whatever bytes a parameter holds.
"""

import posix
import sys
import time

EXIT_REASON_MAX = 128
_FACILITIES = {
    "kern": 0, "user": 8, "mail": 16, "daemon": 24, "auth": 32, "syslog": 40, "lpr": 48,
    "news": 56, "uucp": 64, "cron": 72, "authpriv": 80, "ftp": 88,
    "local0": 128, "local1": 136, "local2": 144, "local3": 152, "local4": 160,
    "local5": 168, "local6": 176, "local7": 184,
}
_PRIORITIES = {"ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}


def one_line(text: str) -> str:
    """`text` on one line that every log target can take: whitespace runs become one
    space; other control characters, and bytes that were not UTF-8 (the surrogate
    escapes a parameter's odd bytes decode to), become backslash escapes."""
    text = " ".join(str(text).split())
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def shorten_reason(text: str, limit: int = EXIT_REASON_MAX) -> str:
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class AgentLog:
    """Log lines of one agent invocation, tagged `<type>(<instance>)[pid]`."""

    def __init__(self, tag: str, environ, stream=None):
        self.tag = one_line(tag)
        self.stream = stream if stream is not None else sys.stderr
        self.debug_enabled = environ.get("HA_debug", "0").strip() == "1"
        self.logfile = environ.get("HA_LOGFILE") or None
        self.debuglog = environ.get("HA_DEBUGLOG") or None
        facility = (environ.get("HA_LOGFACILITY") or environ.get("HA_logfacility") or "").strip().lower()
        self.facility = _FACILITIES.get(facility)
        self.exit_reason_prefix = environ.get("OCF_EXIT_REASON_PREFIX") or "ocf-exit-reason:"
        self.last_exit_reason: str | None = None
        self._syslog = None

    def debug(self, message: str) -> None:
        if self.debug_enabled:
            self._emit("DEBUG", message)

    def info(self, message: str) -> None:
        self._emit("INFO", message)

    def warning(self, message: str) -> None:
        self._emit("WARNING", message)

    def error(self, message: str) -> None:
        self._emit("ERROR", message)

    def exit_reason(self, text: str) -> None:
        """Write the reason Pacemaker shows for a failed action (and log it in full)."""
        reason = shorten_reason(text)
        self.last_exit_reason = reason
        self._write_stream(f"{self.exit_reason_prefix}{reason}\n")
        if reason != one_line(text):
            self._emit("ERROR", text, to_stream=False)

    def _emit(self, level: str, message: str, to_stream: bool = True) -> None:
        message = one_line(message)
        if to_stream:
            self._write_stream(f"{level}: {message}\n")
        if self.facility is not None:
            self._to_syslog(level, message)
        target = self.debuglog if (level == "DEBUG" and self.debuglog) else self.logfile
        if target:
            stamp = time.strftime("%b %d %H:%M:%S")
            self._append(target, f"{stamp} {self.tag}[{posix.getpid()}]: {level}: {message}\n")

    def _write_stream(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def _to_syslog(self, level: str, message: str) -> None:
        try:
            if self._syslog is None:
                import syslog  # only when a facility is configured
                syslog.openlog(self.tag, syslog.LOG_PID, self.facility)
                self._syslog = syslog
            self._syslog.syslog(_PRIORITIES[level], f"{level}: {message}")
        except (OSError, ValueError):
            pass

    @staticmethod
    def _append(path: str, line: str) -> None:
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(line)
        except (OSError, ValueError):
            pass
