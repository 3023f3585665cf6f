"""`xenha-sim-ssh`: the ssh of the simulated lab, for `xl migrate -s` and preflights.

    xenha-sim-ssh [ssh options] HOST COMMAND...

HOST is looked up in `$XENHA_SIM_HOSTS/<HOST>` (a directory per simulated host, or a
symlink from an address to one); COMMAND runs through `sh -c` with that host's xl state
(`XENHA_SIM_XL_STATE=<dir>/xl`) and the variables of its `env` file (key=value lines,
`SimHosts.set_env`), as ssh runs it through the remote shell. Failures print
ssh's own texts and exit 255, like ssh: an unknown host, or a host whose `ssh-fault`
file says `host-key` or `refused`.
"""

from __future__ import annotations

import os
import sys

from xenha_lab.sim.xen.state import read_kv

# ssh options that take an argument (OpenSSH 9).
_WITH_ARG = set("BbcDEeFIiJLlmOoPpQRSWw")


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    while args and args[0].startswith("-") and len(args[0]) > 1:
        option = args.pop(0)
        if option[1] in _WITH_ARG and len(option) == 2 and args:
            args.pop(0)
    if not args:
        sys.stderr.write("usage: ssh [-46AaCfGgKkMNnqsTtVvXxYy] destination [command]\n")
        return 255
    host, command = args[0], " ".join(args[1:])
    hosts = os.environ.get("XENHA_SIM_HOSTS", "")
    node_dir = os.path.join(hosts, host) if hosts else ""
    if not node_dir or not os.path.isdir(node_dir):
        sys.stderr.write(f"ssh: Could not resolve hostname {host}: Name or service not known\n")
        return 255
    try:
        with open(os.path.join(node_dir, "ssh-fault"), encoding="utf-8") as handle:
            fault = handle.read().strip()
    except OSError:
        fault = ""
    if fault == "host-key":
        sys.stderr.write("Host key verification failed.\n")
        return 255
    if fault == "refused":
        sys.stderr.write(f"ssh: connect to host {host} port 22: Connection refused\n")
        return 255
    env = dict(os.environ)
    env.update(read_kv(os.path.join(node_dir, "env")))
    env["XENHA_SIM_XL_STATE"] = os.path.join(os.path.realpath(node_dir), "xl")
    os.execvpe("sh", ["sh", "-c", command or "exec sh"], env)
    return 255


if __name__ == "__main__":
    sys.exit(main())
