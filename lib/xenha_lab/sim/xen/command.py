"""What every sub-command of the simulated `xl` shares: xl's option parsing, its way
of leaving with an exit code, its error output and libxl's error codes."""

from __future__ import annotations

import sys

ERROR_FAIL, ERROR_INVAL, ERROR_NOPARAVIRT, ERROR_DOMAIN_NOTFOUND = -3, -6, -10, -21


class Exit(Exception):
    """Leave the command with an exit code (after printing to stderr)."""

    def __init__(self, code: int, message: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message


def err(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")
    sys.stderr.flush()


def getopt(args, short: str, long_map=None, permute: bool = True):
    """xl's option parsing (getopt_long): clustered short options, `--long[=value]`;
    options may follow positionals (GNU permutation) except with `permute=False`, which
    stops at the first positional like xl's global "+vftNT". Unknown option:
    ``option `X' not supported.``, exit 2."""
    long_map = long_map or {}
    opts, positional, rest = [], [], list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            positional.extend(rest)
            break
        if not arg.startswith("-") or arg == "-":
            if not permute:
                positional.append(arg)
                positional.extend(rest)
                break
            positional.append(arg)
            continue
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name == "help":
                opts.append(("h", None))
                continue
            if name not in long_map:
                raise Exit(2, "option `\0' not supported.")
            letter, takes = long_map[name]
            if takes and not eq:
                if not rest:
                    raise Exit(2, "option `\0' not supported.")
                value = rest.pop(0)
            opts.append((letter, value if takes else None))
            continue
        i = 1
        while i < len(arg):
            letter = arg[i]
            pos = (short + "h").find(letter)
            if pos < 0 or letter == ":":
                raise Exit(2, f"option `{letter}' not supported.")
            if pos + 1 < len(short) and short[pos + 1] == ":":
                value = arg[i + 1:] or (rest.pop(0) if rest else None)
                if value is None:
                    raise Exit(2, f"option `{letter}' not supported.")
                opts.append((letter, value))
                break
            opts.append((letter, None))
            i += 1
    return opts, positional


def require(command: str, positional, count: int) -> None:
    if len(positional) < count:
        plural = "s" if count > 1 else ""
        raise Exit(2, f"'xl {command}' requires at least {count} argument{plural}.\n")
