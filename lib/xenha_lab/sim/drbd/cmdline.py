"""The command line of the simulated drbdsetup and drbdsetup-84: drbdsetup's option
syntax, argument checks and their error texts (exit code 20), its output streams."""

from __future__ import annotations

import os
import sys

from xenha_lab.sim.drbd.errors import DrbdError

# options that take no value (booleans with optional argument, flags)
FLAGS = {"force", "discard-my-data", "tentative", "dry-run", "now", "statistics", "verbose", "json",
         "timestamps", "poll", "full", "diff", "show-defaults", "set-defaults", "wait-after-sb",
         "overwrite-data-of-peer", "allow-two-primaries", "always-asbp", "use-rle", "csums-after-crash-only",
         "auto-promote", "disk-barrier", "disk-flushes", "disk-drain", "md-flushes", "al-updates",
         "discard-zeroes-if-aligned", "disable-write-same", "rs-discard-granularity", "two-primaries",
         "clear-bitmap", "force-resync"}

out = sys.stdout.write
err = sys.stderr.write


def parse(args):
    """getopt_long-like: (options dict, positionals). `--k=v`, `--k v`, `--flag`, -v -s -j -n."""
    opts, pos = {}, []
    short = {"v": "verbose", "s": "statistics", "j": "json", "n": "now", "T": "timestamps", "D": "show-defaults",
             "t": "wfc-timeout", "d": "degr-wfc-timeout", "o": "outdated-wfc-timeout", "c": "color",
             "w": "wait-after-sb", "p": "poll"}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            if not eq:
                if name in FLAGS or name == "color":
                    value = "yes"
                elif i < len(args):
                    value = args[i]
                    i += 1
                else:
                    raise DrbdError("plain", 20, f"option '--{name}' requires an argument\n")
            if name == "verbose":
                value = str(int(opts.get("verbose", "0")) + 1)
            opts[name] = value
        elif arg.startswith("-") and len(arg) > 1 and not arg[1].isdigit():
            for j, letter in enumerate(arg[1:]):
                name = short.get(letter)
                if name is None:
                    raise DrbdError("plain", 20, f"{os.path.basename(sys.argv[0]) or 'drbdsetup'}: invalid option -- '{letter}'\n")
                if name in ("wfc-timeout", "degr-wfc-timeout", "outdated-wfc-timeout"):
                    rest = arg[j + 2:]
                    if not rest and i < len(args):
                        rest = args[i]
                        i += 1
                    opts[name] = rest
                    break
                opts[name] = str(int(opts.get("verbose", "0")) + 1) if name == "verbose" else "yes"
        else:
            pos.append(arg)
    return opts, pos


def need(pos, n: int, what: str) -> None:
    if len(pos) < n:
        raise DrbdError("plain", 20, f"Missing argument '{what}'\n")


def to_int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DrbdError("plain", 20, f"{text} is not a valid number\n") from None


def minor_of(text: str) -> int:
    if text.startswith("/dev/drbd"):
        text = text[len("/dev/drbd"):]
    elif text.startswith("minor-"):
        text = text[len("minor-"):]
    if not text.isdigit():
        raise DrbdError("plain", 20, f"Cannot determine minor device number of device '{text}'\n")
    return int(text)


CONFIG_OPTS = ("set-defaults",)


def clean(opts: dict) -> dict:
    return {k: v for k, v in opts.items() if k not in CONFIG_OPTS}
