"""A simulated `drbdsetup-84` (DRBD 8.4 command syntax) over the same simulated kernel.

`DRBD_DRIVER_VERSION_OVERRIDE=8.4.11 drbdadm ...` re-executes /lib/drbd/drbdadm-84,
which runs `drbdsetup-84` looked up on PATH (observed: with a `drbdsetup-84` first on
PATH, drbdadm-84 runs that one; run directly as /lib/drbd/drbdadm-84 it prints
/lib/drbd/drbdsetup-84, but when drbdadm re-executes it, it uses the bare name). So the
staged sim-bin directory first on PATH is enough; /lib is never touched. The syntax is
what drbdadm-84 generates (samples/drbd_08_84_vs_9.txt):

    new-resource R   new-minor R MINOR VOLUME   attach MINOR DISK META INDEX --fencing=..
    connect R ipv4:A:P ipv4:B:P --protocol=C --allow-two-primaries=yes
    disconnect ipv4:A:P ipv4:B:P   net-options ipv4:A:P ipv4:B:P [..]
    primary MINOR [--force]   secondary MINOR   detach MINOR   down R
    role MINOR -> Primary/Secondary   cstate MINOR -> WFConnection|Connected|SyncSource|...
    dstate MINOR -> UpToDate/DUnknown   wait-connect MINOR [--wfc-timeout=S]   show [R]
    outdate MINOR   invalidate MINOR   resume-io MINOR   suspend-io MINOR
    new-current-uuid MINOR [--clear-bitmap]

8.4 has no node-ids: the two ends get ids 0 and 1 by the order of their addresses when
they connect (events2 and status, which 8.4's drbdsetup emulates, name the one peer
`peer`, node-id 0). A minor the kernel does not have is the kernel's 127 with its
additional info; `down` of an unknown resource succeeds silently; what 8.4 does not know
(`--version`, `status --json`) gets its usage and exit 20. All as the real 8.4.11 module
and drbd-utils 9.22 answered in the real-kernel tier (tests/sim/real_samples/). Attach needs v08 meta-data (`drbdadm-84 create-md` writes it); fencing is
a disk option in 8.4 and is applied to the connection when it is made. Error texts and
exit codes are drbdsetup's (8.4 prints `N: Failure: (NNN) ...` and
`N: State change failed: (N) ...` with the minor as object).
"""

from __future__ import annotations

import os
import sys
import time

from xenha_lab.sim.drbd import config, roles
from xenha_lab.sim.drbd.advance import advance, advance_all
from xenha_lab.sim.drbd.cmdline import err, minor_of, need, out, parse
from xenha_lab.sim.drbd.errors import DrbdError
from xenha_lab.sim.drbd.network import addr_ip, norm_addr
from xenha_lab.sim.drbd.node import Node

# 8.4 cstate names for the DRBD 9 (connection state, replication state) pair
def cstate84(res: dict) -> str:
    if not res.conns:
        return "StandAlone"
    conn = next(iter(res.conns.values()))
    if conn.cstate == "StandAlone":
        return "StandAlone"
    if conn.cstate != "Connected":
        return "WFConnection"
    repls = [pd.repl for pd in conn.pd.values()]
    for repl in repls:
        if repl not in ("Established", "Off"):
            return repl
    return "Connected"


def peer(res: dict):
    return next(iter(res.conns.items())) if res.conns else (None, None)


USAGE = """
USAGE: drbdsetup command device arguments options

Device is usually /dev/drbdX or /dev/drbd/X.

Commands are:
    primary             secondary           attach              
    disk-options        detach              connect             
    net-options         disconnect          resize              
    resource-options    new-current-uuid    invalidate          
    invalidate-remote   pause-sync          resume-sync         
    suspend-io          resume-io           outdate             
    verify              down                state               
    role                sh-status           cstate              
    dstate              show-gi             get-gi              
    show                status              check-resize        
    events              events2             wait-connect        
    wait-sync           new-resource        new-minor           
    del-minor           del-resource        

To get more details about a command issue 'drbdsetup help cmd'.

"""


def unknown_minor(text: str) -> DrbdError:
    """The 8.4 kernel's answer for a minor it does not have (with its additional info)."""
    return DrbdError("plain", 10, f"{text}: Failure: (127) Device minor not allocated\n"
                                  "additional info from kernel:\nunknown minor\n")


def by_minor(node, text):
    res, vnr = node.by_minor(minor_of(text))
    if res is None:
        raise unknown_minor(text)
    return res, vnr


def events84(node, res) -> list[str]:
    """`events2 --now` lines of one resource, as 8.4's drbdsetup emulates them (the DRBD 9
    state names; the peer is node-id 0, `peer`)."""
    name = res.name
    lines = [f"exists resource name:{name} role:{res.role} suspended:{res.suspended_text()}"]
    _pid, conn = peer(res)
    if conn is not None:
        lines.append(f"exists connection name:{name} peer-node-id:0 conn-name:peer connection:{conn.cstate} "
                     f"role:{conn.peer_role}")
    for vnr, dev in sorted(res.devices.items()):
        lines.append(f"exists device name:{name} volume:{vnr} minor:{dev.minor} disk:{dev.disk}")
    if conn is not None:
        for vnr, pd in sorted(conn.pd.items()):
            lines.append(f"exists peer-device name:{name} peer-node-id:0 conn-name:peer volume:{vnr} "
                         f"replication:{pd.repl} peer-disk:{pd.pdisk} resync-suspended:no")
    return lines


def status84(res) -> str:
    """`status RES` text of one resource (8.4: the peer is `peer`)."""
    lines = [f"{res.name} role:{res.role}"]
    single = len(res.devices) == 1
    for vnr, dev in sorted(res.devices.items()):
        lines.append(f"  disk:{dev.disk}" if single and vnr == 0 else f"  volume:{vnr} disk:{dev.disk}")
    _pid, conn = peer(res)
    if conn is not None:
        if conn.cstate == "Connected":
            lines.append(f"  peer role:{conn.peer_role}")
            for vnr, pd in sorted(conn.pd.items()):
                volume = "" if single and vnr == 0 else f"volume:{vnr} "
                lines.append(f"    {volume}replication:{pd.repl} peer-disk:{pd.pdisk}")
        else:
            lines.append(f"  peer connection:{conn.cstate}")
    return "\n".join(lines) + "\n\n"


def by_addresses(node, local: str, remote: str):
    local, remote = norm_addr(local), norm_addr(remote)
    for res in node.all():
        for pid, conn in res.conns.items():
            if [local, remote] in conn.paths:
                return res, pid
    raise DrbdError("plain", 10, f"{local} {remote}: No such connection\n")


def show84(node) -> str:
    lines = []
    for res in sorted(node.all(), key=lambda r: r.name):
        lines.append(f"resource {res.name} {{\n")
        pid, conn = peer(res)
        if conn:
            nopts = {k: v for k, v in conn.nopts.items()
                     if k not in ("fencing", "_name") and not (k == "protocol" and v == "C")
                     and not (k == "allow-two-primaries" and v == "no")}
            if nopts:
                lines.append("    net {\n")
                for key, value in nopts.items():
                    lines.append(f"        {key:<16}\t{value};\n")
                lines.append("    }\n")
            if conn.paths:
                local, remote = conn.paths[0]
                lines.append("    _remote_host {\n")
                lines.append(f"        address\t\t\t{remote.replace(':', ' ', 1)};\n")
                lines.append("    }\n")
        lines.append("    _this_host {\n")
        if conn and conn.paths:
            lines.append(f"        address\t\t\t{conn.paths[0][0].replace(':', ' ', 1)};\n")
        for vnr, dev in sorted(res.devices.items()):
            lines.append(f"        volume {vnr} {{\n")
            lines.append(f"            device\t\t\tminor {dev.minor};\n")
            if dev.backing:
                lines.append(f'            disk\t\t\t"{dev.backing}";\n')
                lines.append("            meta-disk\t\t\tinternal;\n")
                dopts = dict(dev.dopts)
                if dopts:
                    lines.append("            disk {\n")
                    for key, value in dopts.items():
                        lines.append(f"                {key:<16}\t{value};\n")
                    lines.append("            }\n")
            lines.append("        }\n")
        lines.append("    }\n}\n\n")
    return "".join(lines)


def run(node, cmd, pos, opts) -> int:
    objname = pos[0] if pos else ""
    try:
        with node:
            if cmd == "new-resource":
                need(pos, 1, "resource")
                config.new_resource(node, pos[0], -1, {k: v for k, v in opts.items() if k != "set-defaults"})
                res = node.load(pos[0])
                if not res.v84:
                    res.v84 = True      # an 8.4 kernel: its helpers see an 8.4 module
                    node.save(res)
            elif cmd == "new-minor":
                need(pos, 3, "volume")
                config.new_minor(node, pos[0], int(pos[1]), int(pos[2]))
            elif cmd == "attach":
                need(pos, 4, "meta_data_index")
                res, _vnr = by_minor(node, pos[0])
                dopts = {k: v for k, v in opts.items() if k != "set-defaults"}
                if "fencing" in dopts:
                    res.opts["fencing84"] = dopts["fencing"]
                    node.save(res)
                config.attach(node, minor_of(pos[0]), pos[1], pos[2], pos[3], dopts, md_format="v08")
            elif cmd == "connect":
                need(pos, 3, "remote_addr")
                res = node.get(pos[0])
                local, remote = norm_addr(pos[1]), norm_addr(pos[2])
                if not res.conns:
                    me = 0 if addr_ip(local) < addr_ip(remote) else 1
                    res.node_id = me
                    node.save(res)
                    nopts = {k: v for k, v in opts.items() if k not in ("set-defaults", "discard-my-data")}
                    if res.opts.get("fencing84"):
                        nopts["fencing"] = res.opts["fencing84"]
                    config.new_peer(node, pos[0], 1 - me, nopts)
                    config.new_path(node, pos[0], 1 - me, local, remote)
                pid, _conn = peer(node.get(pos[0]))
                config.connect(node, pos[0], pid, "discard-my-data" in opts)
            elif cmd == "disconnect":
                need(pos, 2, "remote_addr")
                res, pid = by_addresses(node, pos[0], pos[1])
                config.disconnect(node, res.name, pid, "force" in opts)
            elif cmd == "net-options":
                need(pos, 2, "remote_addr")
                res, pid = by_addresses(node, pos[0], pos[1])
                config.net_options(node, res.name, pid, {k: v for k, v in opts.items() if k != "set-defaults"},
                               "set-defaults" in opts)
            elif cmd in ("disk-options", "resource-options"):
                pass
            elif cmd == "primary":
                need(pos, 1, "minor")
                res, _vnr = by_minor(node, pos[0])
                roles.primary(node, res.name, "force" in opts or "overwrite-data-of-peer" in opts)
            elif cmd == "secondary":
                need(pos, 1, "minor")
                res, _vnr = by_minor(node, pos[0])
                roles.secondary(node, res.name)
            elif cmd in ("role", "cstate", "dstate"):
                need(pos, 1, "minor")
                res, vnr = node.by_minor(minor_of(pos[0]))
                if res is None:
                    raise unknown_minor(pos[0])
                advance(node, res)
                pid, conn = peer(res)
                if cmd == "role":
                    out(f"{res.role}/{conn.peer_role if conn else 'Unknown'}\n")
                elif cmd == "cstate":
                    out(cstate84(res) + "\n")
                else:
                    pdisk = conn.pd[vnr].pdisk if conn else "DUnknown"
                    out(f"{res.devices[vnr].disk}/{pdisk}\n")
            elif cmd == "detach":
                need(pos, 1, "minor")
                config.detach(node, minor_of(pos[0]), "force" in opts)
            elif cmd == "down":
                need(pos, 1, "resource")
                for name in (node.names() if pos[0] == "all" else [pos[0]]):
                    config.down(node, name)
            elif cmd == "outdate":
                roles.outdate(node, minor_of(pos[0]))
            elif cmd == "invalidate":
                roles.invalidate(node, minor_of(pos[0]))
            elif cmd in ("suspend-io", "resume-io"):
                config.suspend_io(node, minor_of(pos[0]), cmd == "resume-io")
            elif cmd == "new-current-uuid":
                need(pos, 1, "minor")
                if "force-resync" in opts:      # DRBD 9's; 8.4's usage lists --clear-bitmap only
                    out(USAGE)
                    raise DrbdError("plain", 20, "new-current-uuid: unrecognized option '--force-resync'\n")
                by_minor(node, pos[0])
                roles.new_current_uuid(node, minor_of(pos[0]), "clear-bitmap" in opts)
            elif cmd == "show":
                out(show84(node))
            elif cmd == "events2":
                if "now" not in opts:
                    raise DrbdError("plain", 20, "events2 without --now: not simulated\n")
                name = pos[0] if pos else "all"
                lines = []
                for res in sorted(advance_all(node, None if name == "all" else [name]), key=lambda r: r.name):
                    lines += events84(node, res)
                out("".join(line + "\n" for line in lines) + "exists -\n")
            elif cmd == "status":
                if "json" in opts:
                    out(USAGE)
                    raise DrbdError("plain", 20, "status: unrecognized option '--json'\n")
                name = pos[0] if pos else "all"
                found = sorted(advance_all(node, None if name == "all" else [name]), key=lambda r: r.name)
                for res in found:
                    out(status84(res))
                if name != "all" and not found:
                    raise DrbdError("plain", 10, f"{name}: No such resource\n")
            elif cmd == "wait-connect":
                need(pos, 1, "minor")
                return wait_connect(node, pos[0], opts)
            else:
                out(USAGE + "\ninvalid command\n")
                return 20
    except DrbdError as error:
        rc, text = error.render(objname)
        err(text)
        return rc
    return 0


def wait_connect(node, minor: str, opts) -> int:
    timeout = int(opts.get("wfc-timeout", "0") or 0)
    deadline = time.monotonic() + timeout if timeout > 0 else None
    node.__exit__()
    try:
        while True:
            with node:
                res, _vnr = node.by_minor(minor_of(minor))
                if res is None:
                    return 10
                advance(node, res)
                if cstate84(res) not in ("WFConnection",):
                    return 0
            if deadline is not None and time.monotonic() >= deadline:
                return 5
            time.sleep(0.1)
    finally:
        node.__enter__()


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get("XENHA_SIM_DRBD_MODULE") == "absent":
        err("Failed to modprobe drbd (No such file or directory)\n")
        return 20
    if not args:
        out("USAGE: drbdsetup-84 command {arguments} [options]\n")
        return 20
    if len(args) > 1 and (args[0].isdigit() or args[0].startswith("/dev/drbd")) and not args[1].isdigit():
        args[0], args[1] = args[1], args[0]
    cmd = args[0]
    opts, pos = parse(args[1:])
    return run(Node(), cmd, pos, opts)


if __name__ == "__main__":
    sys.exit(main())
