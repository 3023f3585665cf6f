"""fence_xenha_lab: the fence agent of xenha's lab, in fence-agents' conventions.

Installed as /usr/sbin/fence_xenha_lab (where pacemaker-fenced looks for fence_*
agents) by `make install-lab`. It asks the lab's power switch, a unix socket served by
the lab's supervisor on the host and bound into every node, to cut or restore a node's
power: a fence agent inside one node cannot reach another node's processes (sibling PID
namespaces).

Options come as `key=value` lines on stdin (as pacemaker-fenced sends them: action=,
port= or plug=, nodename=, the device's parameters) or on the command line
(-o/--action, -n/--plug, --switch-socket, --power-timeout, --delay, -v). Unknown stdin
keys are ignored with a warning, as fence-agents do (fenced also passes its own).

Exit codes as fence-agents: 0 success; status: 0 on, 2 off; 1 any failure.
Standard library only.
"""

from __future__ import annotations

import sys
import time

from xenha_lab.lab.protocol import switch_request, valid_node_name

NAME = "fence_xenha_lab"
DEFAULT_SOCKET = "/run/xenha-lab/switch/switch.sock"
ACTIONS = ("on", "off", "reboot", "status", "list", "list-status", "monitor", "metadata", "manpage",
           "validate-all")
EC_OK, EC_GENERIC, EC_STATUS_OFF = 0, 1, 2

# name -> (getopt, content type, default, required, description)
PARAMETERS = {
    "action": ("-o, --action=[action]", "string", "reboot", False, "Fencing action"),
    "plug": ("-n, --plug=[id]", "string", None, True,
             "Node to fence: its name in the lab (n1, n2, ...)"),
    "port": ("-n, --plug=[id]", "string", None, True, "Node to fence (deprecated alias of plug)"),
    "switch_socket": ("--switch-socket=[path]", "string", DEFAULT_SOCKET, False,
                      "The lab's power switch (a unix socket)"),
    "power_timeout": ("--power-timeout=[seconds]", "second", "20", False,
                      "How long to wait for the switch to do it"),
    "delay": ("--delay=[seconds]", "second", "0", False, "Wait this long before fencing"),
    "verbose": ("-v, --verbose", "boolean", None, False, "Verbose mode"),
}
LONG_OPTIONS = {"--action": "action", "--plug": "plug", "--switch-socket": "switch_socket",
                "--power-timeout": "power_timeout", "--delay": "delay"}
SHORT_OPTIONS = {"-o": "action", "-n": "plug"}
# what pacemaker-fenced adds to every call (not the device's parameters)
FENCED_KEYS = ("nodename", "pcmk_host_list", "pcmk_host_map", "pcmk_host_check", "pcmk_monitor_timeout")


class UsageError(Exception):
    pass


def metadata() -> str:
    lines = ['<?xml version="1.0" ?>',
             f'<resource-agent name="{NAME}" shortdesc="Power switch of the xenha lab\'s namespace nodes">',
             "<longdesc>fence_xenha_lab cuts or restores the power of a node of xenha's lab (a cluster of "
             "namespace nodes on one machine) through the lab's power switch, a unix socket served by the "
             "host.</longdesc>",
             "<vendor-url>https://github.com/xenha</vendor-url>", "<parameters>"]
    for name, (getopt, kind, default, required, text) in PARAMETERS.items():
        extra = ' obsoletes="port"' if name == "plug" else (' deprecated="1"' if name == "port" else "")
        lines.append(f'\t<parameter name="{name}" unique="0" required="{int(required)}"{extra}>')
        lines.append(f'\t\t<getopt mixed="{getopt}" />')
        lines.append(f'\t\t<content type="{kind}"' + (f' default="{default}"' if default is not None else "")
                     + " />")
        lines.append(f'\t\t<shortdesc lang="en">{text}</shortdesc>')
        lines.append("\t</parameter>")
    lines.append("</parameters>")
    lines.append("<actions>")
    for action in ACTIONS:
        lines.append(f'\t<action name="{action}"' + (' automatic="0"' if action == "on" else "") + " />")
    lines += ["</actions>", "</resource-agent>"]
    return "\n".join(lines) + "\n"


def usage() -> str:
    return (f"Usage:\n\t{NAME} [options]\nOptions:\n"
            + "".join(f"   {getopt:30} {text}\n" for getopt, _k, _d, _r, text in PARAMETERS.values()
                      if not getopt.startswith("-n") or text.startswith("Node to fence:"))
            + "   -h, --help                     Display this help and exit\n"
            + "Without options, key=value lines are read from stdin (as pacemaker-fenced sends them).\n")


def parse_args(argv) -> dict:
    options: dict = {}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            options["help"] = True
        elif arg in ("-v", "--verbose"):
            options["verbose"] = "1"
        elif arg in SHORT_OPTIONS:
            if not args:
                raise UsageError(f"option {arg} needs a value")
            options[SHORT_OPTIONS[arg]] = args.pop(0)
        elif arg.split("=", 1)[0] in LONG_OPTIONS:
            key, has_value, value = arg.partition("=")
            if not has_value:
                if not args:
                    raise UsageError(f"option {key} needs a value")
                value = args.pop(0)
            options[LONG_OPTIONS[key]] = value
        else:
            raise UsageError(f"unknown option {arg!r}")
    return options


def parse_stdin(text: str, warn) -> dict:
    options: dict = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, has_value, value = line.partition("=")
        key = key.strip()
        if not has_value:
            warn(f"Parse error: Ignoring unknown option '{line}'")
        elif key in PARAMETERS or key in ("nodename",):
            options[key] = value.strip()
        elif not key.startswith("pcmk_") and key not in FENCED_KEYS:
            warn(f"Parse error: Ignoring unknown option '{key}={value}'")
    return options


def validate(options: dict) -> dict:
    """Normalised options, or UsageError."""
    action = options.get("action", "reboot")
    if action not in ACTIONS:
        raise UsageError(f"Failed: Unrecognised action '{action}'")
    plug = options.get("plug") or options.get("port") or ""
    if action in ("on", "off", "reboot", "status") and not plug:
        raise UsageError("Failed: You have to enter plug number or machine identification")
    if plug and not valid_node_name(plug):
        raise UsageError(f"Failed: {plug!r} is not a node name of the lab")
    numbers = {}
    for key in ("power_timeout", "delay"):
        value = options.get(key, PARAMETERS[key][2])
        try:
            numbers[key] = float(value)
        except ValueError:
            raise UsageError(f"Failed: {key} must be a number of seconds, not {value!r}") from None
        if not 0 <= numbers[key] <= 3600:
            raise UsageError(f"Failed: {key} must be between 0 and 3600 seconds")
    socket_path = options.get("switch_socket", DEFAULT_SOCKET)
    if not socket_path.startswith("/"):
        raise UsageError("Failed: switch_socket must be an absolute path")
    return {"action": action, "plug": plug, "socket": socket_path, "verbose": options.get("verbose") in (
        "1", "true", "yes", "on"), **numbers}


def main(argv=None, stdin=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out, err = sys.stdout, sys.stderr
    try:
        if argv:
            options = parse_args(argv)
            if options.get("help"):
                out.write(usage())
                return EC_OK
        else:
            options = parse_stdin((stdin or sys.stdin).read(), lambda m: err.write(m + "\n"))
        opts = validate(options)
    except UsageError as error:
        err.write(f"{error}\n\nPlease use '-h' for usage\n")
        return EC_GENERIC
    action = opts["action"]
    if action == "metadata":
        out.write(metadata())
        return EC_OK
    if action == "manpage":
        out.write(usage())
        return EC_OK
    if action == "validate-all":
        return EC_OK
    if action in ("off", "reboot") and opts["delay"]:
        time.sleep(opts["delay"])
    request = {"list-status": "list"}.get(action, action)
    try:
        ok, text = switch_request(opts["socket"], request, opts["plug"] if request not in ("list", "monitor") else "",
                                  timeout=opts["power_timeout"] + 10)
    except OSError as error:
        err.write(f"Failed: Unable to connect to the power switch {opts['socket']}: {error}\n")
        return EC_GENERIC
    if not ok:
        err.write(f"Failed: {text}\n")
        return EC_GENERIC
    if opts["verbose"]:
        err.write(f"power switch: {request} {opts['plug']}: {text}\n")
    if action == "status":
        out.write(f"Status: {text.upper()}\n")
        return EC_OK if text == "on" else EC_STATUS_OFF
    if action in ("list", "list-status"):
        nodes = text.split()
        if action == "list":
            out.write("".join(f"{node},{node}\n" for node in nodes))
        else:
            for node in nodes:
                _ok, state = switch_request(opts["socket"], "status", node, timeout=opts["power_timeout"] + 10)
                out.write(f"{node},{node},{state.upper()}\n")
        return EC_OK
    if action == "monitor":
        return EC_OK
    expected = "off" if action == "off" else "on"
    if text != expected:
        err.write(f"Failed: the switch reports {opts['plug']} {text}, expected {expected}\n")
        return EC_GENERIC
    out.write({"off": "Success: Powered OFF\n", "on": "Success: Powered ON\n", "reboot": "Success: Rebooted\n"}[action])
    return EC_OK
