"""A simulated `drbdsetup` (drbd-utils 9.22, DRBD 9 kernel) over the simulated kernel
(xenha_lab.sim.drbd.node).

Command lines are those real `drbdadm` 9.22 generates (see `drbdadm -d`):

    new-resource R NODE_ID [--auto-promote=..]   new-minor R MINOR VOLUME
    new-peer R PEER_ID --_name=N [--fencing=..] [--allow-two-primaries=yes] [--protocol=C] ...
    new-path R PEER_ID ipv4:A:P ipv4:B:P         del-path / del-peer / del-minor / del-resource
    attach MINOR DISK META_DISK INDEX [..]       detach MINOR [--force]
    connect R PEER_ID [--discard-my-data]        disconnect R PEER_ID [--force]
    primary R [--force]   secondary R            down R|all
    role R   cstate R PEER_ID   dstate MINOR     (also the old order `MINOR dstate`, as drbdmeta runs it)
    status [R|all] [--verbose] [--statistics] [--json]
    events2 [R|all] [--now] [--statistics] [--timestamps]
    show [R|all] [--show-defaults]
    wait-connect-{resource R|connection R P|volume R P V} [--wfc-timeout=S] [--degr-wfc-timeout=S]
        [--outdated-wfc-timeout=S] [--wait-after-sb];  wait-sync-{resource|connection|volume}
    net-options R P [..]  disk-options MINOR [..]  resource-options R [..]  peer-device-options R P V [..]
    outdate MINOR  invalidate MINOR  invalidate-remote R P V  suspend-io MINOR  resume-io MINOR
    new-current-uuid MINOR [--clear-bitmap] [--force-resync]
    get-gi R P V  show-gi R P V  check-resize MINOR  resize MINOR  --version

Output formats, texts and exit codes follow drbdsetup (errors: `errors`): the status /
status --json / events2 / show layouts are LINBIT/drbd-utils user/v9/drbdsetup.c's and the
9.22 binary's format strings (9.22 has no ``open:`` key and no ``paths`` in status
--json); events2 lines as in the v9.22 golden tests (shared/samples/drbd_12*).

The import path is kept lean for the frequent queries (events2 --now, status, role,
cstate, dstate): no json/re/subprocess/enum/dataclasses/typing at import time; json is
imported only for `show --json`, the configuration and role changes only for the
commands that make them. Setting ``XENHA_SIM_DRBD_MODULE=absent`` makes every command
fail like drbdsetup on a host without the module (rc 20).
"""

from __future__ import annotations

import os
import sys
import time

from xenha_lab.sim.drbd import resync
from xenha_lab.sim.drbd.advance import advance, advance_all
from xenha_lab.sim.drbd.cmdline import clean, err, minor_of, need, out, parse, to_int
from xenha_lab.sim.drbd.errors import DrbdError
from xenha_lab.sim.drbd.node import Node

NO_MODULE = "Failed to modprobe drbd (No such file or directory)\n"
VERSION = ("DRBDADM_BUILDTAG=GIT-hash:\\ 409097fe02187f83790b88ac3e0d94f3c167adab\\ reproducible\\ build\\,"
           "\\ 2023-01-09\\ 14:51:18\nDRBDADM_API_VERSION=2\nDRBD_KERNEL_VERSION_CODE=0x090202\n"
           "DRBD_KERNEL_VERSION=9.2.2\nDRBDADM_VERSION_CODE=0x091600\nDRBDADM_VERSION=9.22.0\n")
# option defaults as `drbdsetup show` knows them (shown only when different)
NET_DEFAULTS = {"protocol": "C", "allow-two-primaries": "no", "fencing": "dont-care",
                "after-sb-0pri": "disconnect", "after-sb-1pri": "disconnect",
                "after-sb-2pri": "disconnect", "discard-my-data": "no", "tentative": "no"}

# --- queries ------------------------------------------------------------------------
def cmd_role(node, pos, opts):
    need(pos, 1, "resource")
    with node:
        res = node.load(pos[0])
        if res is None:
            raise DrbdError("plain", 10, f"{pos[0]}: No such resource\n")
        advance(node, res)
        out(res.role + "\n")


def cmd_cstate(node, pos, opts):
    need(pos, 1, "resource")
    need(pos, 2, "peer_node_id")
    with node:
        res = node.load(pos[0])
        pid = to_int(pos[1], "peer_node_id")
        if res is None or pid not in res.conns:
            raise DrbdError("plain", 10, f"{pos[0]}: No such connection\n")
        advance(node, res)
        out(res.conns[pid].cstate + "\n")


def cmd_dstate(node, pos, opts):
    need(pos, 1, "minor")
    minor = minor_of(pos[0])
    with node:
        res, vnr = node.by_minor(minor)
        if res is None:
            raise DrbdError("plain", 10, f"{pos[0]}: No such device\n")
        advance(node, res)
        text = res.devices[vnr].disk
        for pid in sorted(res.conns):
            text += "/" + res.conns[pid].pd[vnr].pdisk
        out(text + "\n")


def selected(node, name: str):
    """The resources a query names ("all" or one), each advanced (caller holds the lock)."""
    return advance_all(node, None if name == "all" else [name])


def cmd_status(node, pos, opts):
    name = pos[0] if pos else "all"
    verbose = int(opts.get("verbose", "0"))
    stats = "statistics" in opts
    with node:
        resources = sorted(advance_all(node), key=lambda r: r.name)
    if "json" in opts:
        text = status_json(node, resources, name)
    else:
        if not resources:
            out("# No currently configured DRBD found.\n")
        text = status_text(node, resources, name, verbose, stats)
    out(text)
    if name != "all" and not any(r.name == name for r in resources):
        raise DrbdError("plain", 10, f"{name}: No such resource\n")


class Wrap:
    """drbdsetup's wrap_printf: indentation at line starts, a leading space dropped there."""

    def __init__(self):
        self.parts, self.col = [], 0

    def __call__(self, indent: int, text: str):
        for piece in text.split("\n")[:-1] if text.endswith("\n") else [text]:
            pass
        chunks = text.split("\n")
        for i, chunk in enumerate(chunks):
            if i > 0:
                self.parts.append("\n")
                self.col = 0
            if not chunk:
                continue
            if self.col == 0:
                chunk = " " * indent + chunk.lstrip(" ")
            self.parts.append(chunk)
            self.col += len(chunk)

    def text(self):
        return "".join(self.parts)


def status_text(node, resources, name, verbose, stats) -> str:
    w = Wrap()
    tty = os.isatty(1)
    for res in resources:
        if name != "all" and res.name != name:
            continue
        w(0, res.name)
        if verbose:
            w(4, f" node-id:{res.node_id}")
        w(4, f" role:{res.role}")
        if verbose or res.suspended:
            w(4, f" suspended:{res.suspended_text()}")
        if stats and verbose:
            w(4, "\n")
            w(4, " write-ordering:flush")
        w(0, "\n")
        devices = sorted(res.devices.items())
        single = len(devices) == 1
        for vnr, dev in devices:
            indent = 2
            if verbose or not (single and vnr == 0):
                w(indent, f"volume:{vnr}")
                indent = 6
                if verbose:
                    w(indent, f" minor:{dev.minor}")
            w(indent, f" disk:{dev.disk}")
            if dev.disk == "Diskless" and (verbose or not tty):
                w(indent, " client:no")
            if verbose:
                w(indent, f" backing_dev:{dev.backing or 'none'}")
            if verbose:
                w(indent, " quorum:yes")
            indent = 6
            if stats:
                w(indent, "\n")
                if verbose:
                    w(indent, f" size:{dev.size_kib}")
                w(indent, f" read:{dev.read} written:{dev.written}")
                if verbose:
                    w(indent, " al-writes:0 bm-writes:0 upper-pending:0 lower-pending:0 al-suspended:no")
            if verbose:
                w(indent, " blocked:no")
            w(indent, "\n")
        for pid, conn in sorted(res.conns.items(), key=lambda kv: kv[1].name):
            if conn.name:
                w(2, conn.name)
            if verbose or not conn.name:
                w(6 if conn.name else 2, f" node-id:{pid}")
            if verbose or conn.cstate != "Connected":
                w(6, f" connection:{conn.cstate}")
            if verbose or conn.cstate == "Connected":
                w(6, f" role:{conn.peer_role}")
            if verbose:
                w(6, " congested:no ap-in-flight:0 rs-in-flight:0")
            w(0, "\n")
            if verbose or stats or conn.cstate == "Connected":
                for vnr, pd in sorted(conn.pd.items()):
                    indent = 4
                    if verbose or not (single and vnr == 0):
                        w(indent, f"volume:{vnr}")
                        indent = 8
                    repl = pd.repl
                    if verbose or repl not in ("Off", "Established"):
                        w(indent, f" replication:{repl}")
                        indent = 8
                    if verbose or stats or repl != "Off" or pd.pdisk != "DUnknown":
                        w(indent, f" peer-disk:{pd.pdisk}")
                        if pd.pdisk == "Diskless" and (verbose or not tty):
                            w(indent, " peer-client:no")
                        indent = 8
                        rs = resync.stats(pd, node.now)
                        if rs:
                            w(indent, " done:%.2f" % rs.percent)
                        if verbose:
                            w(indent, " resync-suspended:no")
                        if stats:
                            w(indent, "\n")
                            w(indent, " " + " ".join(peer_stats(node, res, pid, vnr, pd, verbose)))
                    w(0, "\n")
        w(0, "\n")
    return w.text()


def peer_stats(node, res, pid, vnr, pd, verbose, events=False) -> list[str]:
    oos = resync.out_of_sync_kib(node, res, pid, vnr)
    items = [f"received:{pd.received}", f"sent:{pd.sent}"]
    if verbose or oos:
        items.append(f"out-of-sync:{oos}")
    if not verbose:
        return items
    items += ["pending:0", "unacked:0"]
    rs = resync.stats(pd, node.now)
    if rs:
        rate_mib = rs.rate / 1024.0
        items.append("dbdt1:%.2f" % rate_mib)
        items.append("eta:%.0f" % rs.eta)
    return items


def b(value) -> str:
    return "true" if value else "false"


def status_json(node, resources, name) -> str:
    parts = ["[\n"]
    first = True
    for res in resources:
        if name != "all" and res.name != name:
            continue
        if not first:
            parts.append(",\n")
        first = False
        parts.append(
            "{\n"
            f'  "name": "{res.name}",\n'
            f'  "node-id": {res.node_id},\n'
            f'  "role": "{res.role}",\n'
            f'  "suspended": {b(res.suspended)},\n'
            f'  "suspended-user": {b(res.susp_user)},\n'
            '  "suspended-no-data": false,\n'
            f'  "suspended-fencing": {b(res.susp_fen)},\n'
            '  "suspended-quorum": false,\n'
            '  "force-io-failures": false,\n'
            '  "write-ordering": "flush",\n'
            '  "devices": [\n')
        devs = []
        for vnr, dev in sorted(res.devices.items()):
            devs.append(
                "    {\n"
                f'      "volume": {vnr},\n'
                f'      "minor": {dev.minor},\n'
                f'      "disk-state": "{dev.disk}",\n'
                '      "client": false,\n'
                '      "quorum": true,\n'
                f'      "size": {dev.size_kib},\n'
                f'      "read": {dev.read},\n'
                f'      "written": {dev.written},\n'
                '      "al-writes": 0,\n'
                '      "bm-writes": 0,\n'
                '      "upper-pending": 0,\n'
                '      "lower-pending": 0\n'
                "    }")
        parts.append(",\n".join(devs))
        parts.append(' ],\n  "connections": [\n')
        conns = []
        for pid, conn in sorted(res.conns.items(), key=lambda kv: kv[1].name):
            text = ("    {\n"
                    f'      "peer-node-id": {pid},\n'
                    f'      "name": "{conn.name}",\n'
                    f'      "connection-state": "{conn.cstate}", \n'
                    '      "congested": false,\n'
                    f'      "peer-role": "{conn.peer_role}",\n'
                    '      "ap-in-flight": 0,\n'
                    '      "rs-in-flight": 0,\n'
                    '      "peer_devices": [\n')
            pds = []
            for vnr, pd in sorted(conn.pd.items()):
                dev = res.devices[vnr]
                oos = resync.out_of_sync_kib(node, res, pid, vnr)
                size = dev.size_kib
                rs = resync.stats(pd, node.now)
                pct = 0.0 if size == 0 else 100 * (1 - oos / size)
                item = ("        {\n"
                        f'          "volume": {vnr},\n'
                        f'          "replication-state": "{pd.repl}",\n'
                        f'          "peer-disk-state": "{pd.pdisk}",\n'
                        '          "peer-client": false,\n'
                        '          "resync-suspended": "no",\n'
                        f'          "received": {pd.received},\n'
                        f'          "sent": {pd.sent},\n'
                        f'          "out-of-sync": {oos},\n'
                        '          "pending": 0,\n'
                        '          "unacked": 0,\n'
                        f'          "has-sync-details": {b(rs)},\n'
                        '          "has-online-verify-details": false,\n'
                        '          "percent-in-sync": %.2f%s\n' % (pct, "," if rs else ""))
                if rs:
                    elapsed_ms = int((node.now - rs.start) * 1000)
                    db_sect = int(rs.done_kib * 2)
                    mibs = rs.rate / 1024.0
                    item += (f'          "rs-total": {int(rs.total * 2)},\n'
                             f'          "rs-dt-start-ms": {elapsed_ms},\n'
                             '          "rs-paused-ms": 0,\n'
                             f'          "rs-dt0-ms": {elapsed_ms},\n'
                             f'          "rs-db0-sectors": {db_sect},\n'
                             f'          "rs-dt1-ms": {elapsed_ms},\n'
                             f'          "rs-db1-sectors": {db_sect},\n'
                             '          "rs-failed": 0,\n'
                             '          "rs-same-csum": 0,\n'
                             '          "want": %.2f,\n' % mibs +
                             '          "db0/dt0 [MiB/s]": %.2f,\n' % mibs +
                             '          "db1/dt1 [MiB/s]": %.2f,\n' % mibs +
                             '          "estimated-seconds-to-finish": %.0f,\n' % rs.eta +
                             '          "db/dt [MiB/s]": %.2f,\n' % mibs +
                             '          "percent-resync-done": %.2f\n' % rs.percent)
                item += "        }"
                pds.append(item)
            text += ",\n".join(pds) + " ]\n    }"
            conns.append(text)
        parts.append(",\n".join(conns))
        parts.append(" ]\n}\n")
    parts.append("]\n\n")
    return "".join(parts)


# --- events2 -------------------------------------------------------------------------
def event_objects(node, res, stats: bool) -> list[tuple[str, str, str]]:
    """(object kind, key, values) for one resource, in the kernel's dump order."""
    name = res.name
    objs = []
    may, score = res.promotion_score()
    values = f"role:{res.role} suspended:{res.suspended_text()} force-io-failures:no"
    if stats:
        values += " write-ordering:flush"
    values += f" may_promote:{'yes' if may else 'no'} promotion_score:{score}"
    objs.append(("resource", f"name:{name}", values))
    conns = sorted(res.conns.items(), key=lambda kv: kv[1].name)
    for pid, conn in conns:
        values = f"connection:{conn.cstate} role:{conn.peer_role}"
        if stats:
            values += " congested:no ap-in-flight:0 rs-in-flight:0"
        objs.append(("connection", f"name:{name} peer-node-id:{pid} conn-name:{conn.name}", values))
    for vnr, dev in sorted(res.devices.items()):
        values = f"backing_dev:{dev.backing or 'none'} disk:{dev.disk} client:no quorum:yes"
        if stats:
            values += (f" size:{dev.size_kib} read:{dev.read} written:{dev.written}"
                       " al-writes:0 bm-writes:0 upper-pending:0 lower-pending:0 al-suspended:no blocked:no")
        objs.append(("device", f"name:{name} volume:{vnr} minor:{dev.minor}", values))
    for pid, conn in conns:
        for vnr, pd in sorted(conn.pd.items()):
            values = (f"replication:{pd.repl} peer-disk:{pd.pdisk} peer-client:no resync-suspended:no")
            rs = resync.stats(pd, node.now)
            if rs:
                values += " done:%.2f" % rs.percent
            if stats:
                values += " " + " ".join(peer_stats(node, res, pid, vnr, pd, 1, events=True))
            objs.append(("peer-device", f"name:{name} peer-node-id:{pid} conn-name:{conn.name} volume:{vnr}",
                         values))
    for pid, conn in conns:
        for local, peer in conn.paths:
            est = "yes" if conn.cstate == "Connected" else "no"
            objs.append(("path", f"name:{name} peer-node-id:{pid} conn-name:{conn.name} local:{local} peer:{peer}",
                         f"established:{est}"))
    return objs


def stamp(enabled: bool) -> str:
    if not enabled:
        return ""
    now = time.time()
    tm = time.localtime(now)
    off = tm.tm_gmtoff
    return "%04u-%02u-%02uT%02u:%02u:%02u.%06u%+03d:%02u " % (
        tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int((now % 1) * 1e6),
        int(off / 3600), (abs(off) // 60) % 60)


def cmd_events2(node, pos, opts):
    name = pos[0] if pos else "all"
    stats = "statistics" in opts or "full" in opts
    ts = "timestamps" in opts
    with node:
        resources = selected(node, name)
    snapshot = {}
    lines = []
    for res in sorted(resources, key=lambda r: r.name):
        for kind, key, values in event_objects(node, res, stats):
            snapshot[(kind, key)] = values
            lines.append(f"{stamp(ts)}exists {kind} {key} {values}\n")
    if "now" in opts:
        out("".join(lines) + f"{stamp(ts)}exists -\n")
        return
    # streaming: the initial state, then what changes (polled; no netlink here)
    out("".join(lines) + f"{stamp(ts)}exists -\n")
    sys.stdout.flush()
    helpers = os.path.join(node.state, "helpers")
    try:
        offset = os.path.getsize(helpers)
    except OSError:
        offset = 0
    while True:
        time.sleep(0.2)
        with node:
            resources = selected(node, name)
        current = {}
        order = []
        for res in sorted(resources, key=lambda r: r.name):
            for kind, key, values in event_objects(node, res, stats):
                current[(kind, key)] = values
                order.append((kind, key))
        chunk = []
        try:
            with open(helpers, encoding="utf-8") as handle:
                handle.seek(offset)
                data = handle.read()
                offset += len(data.encode())
            for line in data.splitlines():
                if name == "all" or f"name:{name} " in line + " ":
                    chunk.append(f"{stamp(ts)}{line}\n")
        except OSError:
            pass
        for kind, key in order:
            values = current[(kind, key)]
            old = snapshot.get((kind, key))
            if old is None:
                chunk.append(f"{stamp(ts)}create {kind} {key} {values}\n")
            elif old != values:
                changed = changed_values(old, values)
                chunk.append(f"{stamp(ts)}change {kind} {key}{changed}\n")
        for kind, key in snapshot:
            if (kind, key) not in current:
                chunk.append(f"{stamp(ts)}destroy {kind} {key}\n")
        snapshot = current
        if chunk:
            out("".join(chunk))
            sys.stdout.flush()


def changed_values(old: str, new: str) -> str:
    """Only the fields that changed, as drbdsetup prints change events."""
    olds = dict(item.split(":", 1) for item in old.split())
    parts = []
    for item in new.split():
        key, _, value = item.partition(":")
        if olds.get(key) != value:
            parts.append(item)
    return "".join(" " + p for p in parts)


# --- show ----------------------------------------------------------------------------
def show_text(node, resources, name, defaults: bool) -> str:
    lines = []
    if not resources:
        lines.append("# No currently configured DRBD found.\n")

    def opt(indent, key, value, quote=False):
        value = f'"{value}"' if quote else value
        lines.append(" " * indent + f"{key:<16}\t{value};\n")

    for res in sorted(resources, key=lambda r: r.name):
        if name != "all" and res.name != name:
            continue
        lines.append(f'resource "{res.name}" {{\n')
        ropts = {k: v for k, v in res.opts.items() if defaults or not is_default("res", k, v)}
        if ropts:
            lines.append("    options {\n")
            for key, value in ropts.items():
                opt(8, key, value)
            lines.append("    }\n")
        lines.append("    _this_host {\n")
        lines.append(f"        node-id\t\t\t{res.node_id};\n")
        for vnr, dev in sorted(res.devices.items()):
            lines.append(f"        volume {vnr} {{\n")
            lines.append(f"            device\t\t\tminor {dev.minor};\n")
            if dev.backing:
                lines.append(f'            disk\t\t\t"{dev.backing}";\n')
                lines.append("            meta-disk\t\t\t" + (
                    "internal;\n" if dev.idx in ("internal", "flexible", None) and dev.meta == dev.backing
                    else f'"{dev.meta}";\n'))
                dopts = {k: v for k, v in dev.dopts.items() if defaults or not is_default("disk", k, v)}
                if dopts:
                    lines.append("            disk {\n")
                    for key, value in dopts.items():
                        opt(16, key, value)
                    lines.append("            }\n")
            lines.append("        }\n")
        lines.append("    }\n")
        for pid, conn in sorted(res.conns.items(), key=lambda kv: kv[1].name):
            lines.append("    connection {\n")
            lines.append(f"        _peer_node_id {pid};\n")
            for local, peer in conn.paths:
                lines.append("        path {\n")
                lines.append("            _this_host " + local.replace(":", " ", 1) + ";\n")
                lines.append("            _remote_host " + peer.replace(":", " ", 1) + ";\n")
                lines.append("        }\n")
            if conn.cstate == "StandAlone":
                lines.append("        _is_standalone;\n")
            lines.append("        net {\n")
            nopts = {k: v for k, v in conn.nopts.items() if defaults or not is_default("net", k, v)}
            opt(12, "_name", conn.name, quote=True)
            for key, value in nopts.items():
                opt(12, key, value, quote=key in ("shared-secret", "cram-hmac-alg", "verify-alg", "csums-alg",
                                                  "data-integrity-alg", "transport"))
            lines.append("        }\n")
            lines.append("    }\n")
        lines.append("}\n\n")
    return "".join(lines)


def is_default(section: str, key: str, value: str) -> bool:
    if section == "net":
        return NET_DEFAULTS.get(key) == value
    if section == "res":
        return {"auto-promote": "yes", "on-no-data-accessible": "io-error"}.get(key) == value
    return False


def cmd_show(node, pos, opts):
    name = pos[0] if pos else "all"
    with node:
        resources = node.all()
    if "json" in opts:
        import json  # only here
        data = []
        for res in resources:
            if name != "all" and res.name != name:
                continue
            data.append({"resource": res.name, "_this_host": {"node-id": res.node_id, "volumes": [
                {"volume_nr": v, "device_minor": d.minor, **({"backing-disk": d.backing, "meta-disk": "internal"}
                                                             if d.backing else {})}
                for v, d in sorted(res.devices.items())]},
                "connections": [{"_peer_node_id": p, "net": {"_name": c.name, **c.nopts}}
                                for p, c in sorted(res.conns.items())]})
        out(json.dumps(data, indent=4) + "\n")
        return
    out(show_text(node, resources, name, "show-defaults" in opts))


# --- wait-* ----------------------------------------------------------------------------
def cmd_wait(node, cmd, pos, opts):
    scope = cmd.rsplit("-", 1)[1]          # resource | connection | volume
    sync = cmd.startswith("wait-sync")
    need(pos, 1, "resource")
    name = pos[0]
    pid = to_int(pos[1], "peer_node_id") if scope in ("connection", "volume") and len(pos) > 1 else None
    vnr = to_int(pos[2], "volume") if scope == "volume" and len(pos) > 2 else None
    timeouts = {}
    for key, short in (("wfc-timeout", "t"), ("degr-wfc-timeout", "d"), ("outdated-wfc-timeout", "o")):
        if key in opts:
            value = to_int(opts[key], key)
            if value < 0 or value > 300000:
                raise DrbdError("plain", 20, f"{key.replace('-', '_')} => {value} out of range [0..300000]\n")
            timeouts[key] = value
    timeout = timeouts.get("wfc-timeout", 0)
    after_sb = opts.get("wait-after-sb", "no") == "yes"
    deadline = time.monotonic() + timeout if timeout > 0 else None
    while True:
        with node:
            res = node.load(name)
            if res is None:
                return 0
            advance(node, res)
            pds = []
            for p, conn in res.conns.items():
                if pid is not None and p != pid:
                    continue
                if conn.cstate == "StandAlone" and not after_sb:
                    return 0   # "done waiting": the connection will not come by itself
                for v, pd in conn.pd.items():
                    if vnr is not None and v != vnr:
                        continue
                    pds.append(pd)
            if not pds:
                return 0
            done = all(pd.repl == "Established" or (not sync and pd.repl not in ("Off",)) for pd in pds)
            if done:
                return 0
        if deadline is not None and time.monotonic() >= deadline:
            return 5
        time.sleep(0.1)


# --- config commands -----------------------------------------------------------------------
def run(node: Node, cmd: str, pos, opts) -> int:
    objname = pos[0] if pos else ""
    try:
        if cmd in ("role",):
            cmd_role(node, pos, opts)
        elif cmd == "cstate":
            cmd_cstate(node, pos, opts)
        elif cmd == "dstate":
            cmd_dstate(node, pos, opts)
        elif cmd == "status":
            cmd_status(node, pos, opts)
        elif cmd == "events2":
            cmd_events2(node, pos, opts)
        elif cmd == "show":
            cmd_show(node, pos, opts)
        elif cmd.startswith("wait-connect-") or cmd.startswith("wait-sync-"):
            return cmd_wait(node, cmd, pos, opts)
        else:
            return config_cmd(node, cmd, pos, opts)
    except DrbdError as error:
        rc, text = error.render(objname)
        err(text)
        return rc
    except BrokenPipeError:
        return 0
    return 0


def config_cmd(node, cmd, pos, opts) -> int:
    # the modules that change the kernel's configuration and roles, only for these
    # commands: the frequent queries stay cheaper
    from xenha_lab.sim.drbd import config, roles

    with node:
        if cmd == "new-resource":
            need(pos, 1, "resource")
            need(pos, 2, "node_id")
            config.new_resource(node, pos[0], to_int(pos[1], "node_id"), clean(opts))
        elif cmd == "new-minor":
            need(pos, 3, "volume")
            config.new_minor(node, pos[0], to_int(pos[1], "minor"), to_int(pos[2], "volume"))
        elif cmd == "new-peer":
            need(pos, 2, "peer_node_id")
            config.new_peer(node, pos[0], to_int(pos[1], "peer_node_id"), clean(opts))
        elif cmd == "new-path":
            need(pos, 4, "remote_addr")
            config.new_path(node, pos[0], to_int(pos[1], "peer_node_id"), pos[2], pos[3])
        elif cmd == "del-path":
            need(pos, 4, "remote_addr")
            config.del_path(node, pos[0], to_int(pos[1], "peer_node_id"), pos[2], pos[3])
        elif cmd == "del-peer":
            need(pos, 2, "peer_node_id")
            config.del_peer(node, pos[0], to_int(pos[1], "peer_node_id"))
        elif cmd == "del-minor":
            need(pos, 1, "minor")
            config.del_minor(node, minor_of(pos[0]))
        elif cmd == "del-resource":
            need(pos, 1, "resource")
            config.del_resource(node, pos[0])
        elif cmd == "attach":
            need(pos, 4, "meta_data_index")
            config.attach(node, minor_of(pos[0]), pos[1], pos[2], pos[3], clean(opts))
        elif cmd == "disk-options":
            need(pos, 1, "minor")
            config.disk_options(node, minor_of(pos[0]), clean(opts), "set-defaults" in opts)
        elif cmd == "resource-options":
            need(pos, 1, "resource")
            config.resource_options(node, pos[0], clean(opts), "set-defaults" in opts)
        elif cmd == "peer-device-options":
            need(pos, 3, "volume")
            node.get(pos[0])
        elif cmd == "net-options":
            need(pos, 2, "peer_node_id")
            config.net_options(node, pos[0], to_int(pos[1], "peer_node_id"), clean(opts), "set-defaults" in opts)
        elif cmd == "connect":
            need(pos, 2, "peer_node_id")
            config.connect(node, pos[0], to_int(pos[1], "peer_node_id"), "discard-my-data" in opts)
        elif cmd == "disconnect":
            need(pos, 2, "peer_node_id")
            config.disconnect(node, pos[0], to_int(pos[1], "peer_node_id"), "force" in opts)
        elif cmd == "detach":
            need(pos, 1, "minor")
            config.detach(node, minor_of(pos[0]), "force" in opts)
        elif cmd == "down":
            need(pos, 1, "resource")
            names = node.names() if pos[0] == "all" else [pos[0]]
            for name in names:
                config.down(node, name)
        elif cmd == "primary":
            need(pos, 1, "resource")
            roles.primary(node, pos[0], "force" in opts or "overwrite-data-of-peer" in opts)
        elif cmd == "secondary":
            need(pos, 1, "resource")
            roles.secondary(node, pos[0])
        elif cmd == "outdate":
            need(pos, 1, "minor")
            roles.outdate(node, minor_of(pos[0]))
        elif cmd == "new-current-uuid":
            need(pos, 1, "minor")
            roles.new_current_uuid(node, minor_of(pos[0]), "clear-bitmap" in opts, "force-resync" in opts)
        elif cmd == "invalidate":
            need(pos, 1, "minor")
            roles.invalidate(node, minor_of(pos[0]))
        elif cmd == "invalidate-remote":
            need(pos, 3, "volume")
            res = node.get(pos[0])
            vnr = to_int(pos[2], "volume")
            if vnr not in res.devices:
                raise DrbdError("plain", 10, f"{pos[0]}: No such peer device\n")
            roles.invalidate(node, res.devices[vnr].minor, to_int(pos[1], "peer_node_id"))
        elif cmd in ("suspend-io", "resume-io"):
            need(pos, 1, "minor")
            config.suspend_io(node, minor_of(pos[0]), cmd == "resume-io")
        elif cmd in ("get-gi", "show-gi"):
            need(pos, 3, "volume")
            return get_gi(node, pos, cmd)
        elif cmd in ("check-resize", "resize"):
            need(pos, 1, "minor")
            res, _vnr = node.by_minor(minor_of(pos[0]))
            if res is None:
                raise DrbdError("plain", 10, f"{pos[0]}: No such device\n")
        else:
            raise DrbdError("plain", 20, "invalid command\n")
    return 0


def get_gi(node, pos, cmd) -> int:
    res = node.load(pos[0])
    pid, vnr = to_int(pos[1], "peer_node_id"), to_int(pos[2], "volume")
    if res is None or pid not in res.conns or vnr not in res.devices:
        raise DrbdError("plain", 10, f"{pos[0]}: No such peer device\n")
    dev = res.devices[vnr]
    if not dev.backing:
        raise DrbdError("plain", 1, "Device has no disk\n")
    disk = node.disk(dev.backing)
    hist = (disk.hist + [0, 0])[:2]
    flags = disk.flags
    bits = [flags & 1, 1 if flags & 16 else 0, 1 if flags & 2 else 0, 1 if flags & 64 else 0, 1, 0, 0,
            1 if res.conns[pid].epoch else 0, 1 if disk.peer_outdated.get(pid) else 0,
            1 if res.conns[pid].nopts.get("fencing", "dont-care") != "dont-care" else 0, 0, 1]
    out("%016X:%016X:%016X:%016X:%s\n" % (disk.cur, disk.bm.get(pid, 0), hist[0], hist[1],
                                          ":".join(str(x) for x in bits)))
    return 0


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get("XENHA_SIM_DRBD_MODULE") == "absent":
        err(NO_MODULE)
        return 20
    if os.environ.get("DRBD_DRIVER_VERSION_OVERRIDE", "").startswith("8."):
        # an 8.4 kernel: drbd-utils' drbdsetup hands every command to drbdsetup-84
        from xenha_lab.sim.drbd import drbdsetup84
        return drbdsetup84.main(args)
    if not args or args[0] in ("help", "--help", "-h"):
        out("drbdsetup - Configure the DRBD kernel module.\n\nUSAGE: drbdsetup command {arguments} [options]\n")
        return 20
    if args[0] in ("--version", "-V", "version"):
        out(VERSION)
        return 0
    # compatibility order `drbdsetup MINOR|/dev/drbdN cmd ...` (drbdmeta runs `drbdsetup 1 dstate`)
    if len(args) > 1 and (args[0].isdigit() or args[0].startswith("/dev/drbd")) and not args[1].isdigit():
        args[0], args[1] = args[1], args[0]
    cmd = args[0]
    try:
        opts, pos = parse(args[1:])
    except DrbdError as error:
        rc, text = error.render(args[1] if len(args) > 1 else "")
        err(text)
        return rc
    node = Node()
    return run(node, cmd, pos, opts)


if __name__ == "__main__":
    sys.exit(main())
