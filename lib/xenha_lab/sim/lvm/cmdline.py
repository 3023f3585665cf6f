"""The command line of the simulated lvm commands: lvm's option syntax as far as the
simulator needs to read it, and the output it adds to the real command's."""

from __future__ import annotations

import sys

class Output:
    """Collected output of one wrapped command, written at the end (stderr first)."""

    def __init__(self):
        self.out: list[str] = []
        self.err: list[str] = []

    def error(self, text: str):
        for line in text.splitlines():
            self.err.append("  " + line + "\n")

    def print(self, text: str):
        for line in text.splitlines():
            self.out.append("  " + line + "\n")

    def flush(self):
        if self.err:
            sys.stderr.write("".join(self.err))
            sys.stderr.flush()
            self.err = []
        if self.out:
            sys.stdout.write("".join(self.out))
            sys.stdout.flush()
            self.out = []


ACTIVATE_VALUES = ("y", "n", "ey", "en", "ly", "ln", "sy", "sn", "ay")
VALUE_OPTIONS = {
    # options that take a value, so that positional arguments are told apart
    "-a", "--activate", "--activationmode", "-S", "--select", "--config", "--addtag",
    "--deltag", "-o", "--options", "-O", "--sort", "--separator", "--units", "-L", "--size",
    "-l", "--extents", "-n", "--name", "-s", "--snapshot", "-c", "--chunksize", "-p",
    "--permission", "-r", "--readahead", "-C", "--contiguous", "--alloc", "-i", "--stripes",
    "-I", "--stripesize", "-m", "--mirrors", "--type", "-V", "--virtualsize", "-Z", "--zero",
    "-W", "--wipesignatures", "--reportformat", "--profile", "--commandprofile",
    "--metadataprofile", "-M", "--persistent", "--major", "--minor", "--setautoactivation",
    "--systemid", "-x", "--resizeable", "-u", "--uuid", "--monitor", "--poll",
    "--errorwhenfull", "--discards", "--cachemode", "--cachepolicy", "--cachesettings",
    "--headings", "--configreport", "--logonly", "--devices", "--devicesfile", "--nolocking",
    "--lockopt", "--driverloaded", "--vgmetadatacopies", "--metadatacopies", "--pvmetadatacopies",
    "-A", "--autobackup", "--locktype", "--lock-type", "--setactivationskip", "-k", "--regionsize",
    "-R", "--raidintegrity", "--ignoremonitoring",
}
# options whose value is optional/glued in lvm's syntax are treated as flags here
FLAG_ONLY = {"--nolocking", "-s", "--snapshot", "-C", "-A", "-k", "-M", "-x", "-r", "-R", "-p", "-u"}


def activate_value(args):
    """The -a/--activate value of an lvchange/vgchange/lvcreate command line, or None."""
    value = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-a", "--activate") and i + 1 < len(args):
            value = args[i + 1]
            i += 2
            continue
        if arg.startswith("--activate="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-a") and not arg.startswith("--") and len(arg) > 2:
            value = arg[2:]
        i += 1
    return value


def option_value(args, *names):
    value = None
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                value = args[i + 1]
            elif name.startswith("--") and arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
            elif not name.startswith("--") and arg.startswith(name) and len(arg) > len(name):
                value = arg[len(name):]
    return value


def has_flag(args, *names):
    for arg in args:
        if arg in names:
            return True
        for name in names:
            if len(name) == 2 and not name.startswith("--") and arg.startswith("-") \
                    and not arg.startswith("--") and name[1] in arg[1:] and _is_flag_cluster(arg):
                return True
    return False


def _is_flag_cluster(arg: str) -> bool:
    # "-fy", "-vf": clusters of single-letter flags without values
    return all(ch in "fyvqtKPd" for ch in arg[1:])


def positionals(args):
    out, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out.extend(args[i + 1:])
            break
        if arg.startswith("-") and arg != "-":
            if "=" in arg or arg in FLAG_ONLY:
                i += 1
                continue
            if arg in VALUE_OPTIONS:
                i += 2
                continue
            i += 1
            continue
        out.append(arg)
        i += 1
    return out


def activation_mode(args) -> str:
    mode = option_value(args, "--activationmode") or "complete"
    if has_flag(args, "-P", "--partial"):
        mode = "partial"
    return mode


def normalize_mode(value: str) -> str:
    value = value.lower()
    return {"e": "ey", "s": "sy", "l": "ly", "a": "ay"}.get(value, value)


def ask(prompt: str) -> str:
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = sys.stdin.readline() if sys.stdin and not sys.stdin.closed else ""
    answer = line.strip().lower()[:1]
    if not line:
        sys.stdout.write("[n]\n")
        return "n"
    return answer
