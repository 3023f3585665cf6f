"""A simulated `xl` (Xen 4.17) for machines without Xen: same command line, same
output formats, same exit codes and error texts as far as xenha and the lab use it.

    xl [-vfNtT] list [-l] [-v] [Domain]
    xl create [-p] [-e] [-F] [-q] [-n] ConfigFile [key=value ...]
    xl shutdown|reboot [-w] [-F] Domain        xl destroy [-f] Domain
    xl pause|unpause Domain                    xl rename Domain NewName
    xl trigger Domain power|reset|nmi|...      xl mem-set Domain Size
    xl migrate [-s CMD] [-C cfg] [-e] [-p] [-F] [-D] [--debug] Domain Host
    xl migrate-receive [-F] [-e] [-d] [-p]     xl info [key]    xl domid Name

Facts behind the texts: shared/reference/tools.md §1, shared/samples/xl_list.txt and
xen_0*.txt, and the Xen 4.17 sources (messages and exit codes only). Where the real
tool's output depends on the hypervisor (libxl log lines, `xc: info:` noise) the
simulator prints the lines a user would act on. Host state: `xenha_lab.sim.xen.state`;
migration: `xenha_lab.sim.xen.migrate`.
"""

from __future__ import annotations

import os
import sys
import time

from xenha_lab.sim.xen import state as st
from xenha_lab.sim.xen.command import ERROR_DOMAIN_NOTFOUND, ERROR_FAIL, ERROR_NOPARAVIRT, Exit, err, getopt, require
from xenha_lab.sim.xen.domains import create_domain, find_domain, parse_config_text, rename, respawn
from xenha_lab.sim.xen.state import SimHost

HEADER = "Name                                        ID   Mem VCPUs\tState\tTime(s)"
ROW = "%-40s %5d %5d %5d     %s  %8.1f"

NO_CONTEXT = (
    "xencall: error: Could not obtain handle on privileged command interface: No such file or directory\n"
    "libxl: error: libxl.c:102:libxl_ctx_alloc: cannot open libxc handle: No such file or directory\n"
    "cannot init xl context\n"
)


# --- commands ----------------------------------------------------------------------
def cmd_list(host: SimHost, args) -> int:
    opts, positional = getopt(args, "lvZcn", {"long": ("l", False), "verbose": ("v", False),
                                               "context": ("Z", False), "cpupool": ("c", False),
                                               "numa": ("n", False)})
    flags = {letter for letter, _ in opts}
    if "h" in flags:
        print("Usage: xl [-v] list [options] [Domain]\n\nList information about all/some domains.")
        return 0
    if len(positional) > 1:
        raise Exit(1, "")
    records = host.domains()
    if positional:
        record = find_domain(host, positional[0])
        if not record.data:
            raise Exit(1, f"Error: Domain '{positional[0]}' does not exist.")
        records = [record]
    if "l" in flags:
        return print_long(host, records)
    out = [HEADER + ("   UUID                            Reason-Code\tSecurity Label" if "v" in flags else "")]
    if not positional:
        out.append(ROW % ("Domain-0", 0, st.DOM0_MEMORY_MIB, os.cpu_count() or 1, "r-----",
                          time.monotonic() / 100.0))
    for record in records:
        letters = record.letters()
        row = ROW % (record.name or "(null)", record.domid, int(record.data.get("memory", 0)),
                     int(record.data.get("vcpus", 1)), letters, record.cpu_seconds())
        if "v" in flags:
            reason = {"-": "-"}.get(letters[4], "%8x" % "-rscwS".index(letters[4]))
            row += f" {record.data.get('uuid', '')} {reason:>8} {'-':>16}"
        out.append(row)
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def print_long(host: SimHost, records) -> int:
    import json

    entries = []
    for record in records:
        try:
            with open(record.path(".cfg"), encoding="utf-8") as handle:
                config = parse_config_text(handle.read(), "<saved>")
        except (OSError, Exit):
            continue  # xl skips domains whose stored config cannot be read
        disks = []
        for disk in config.disks():
            entry = {"pdev_path": disk.target, "vdev": disk.vdev, "format": disk.format,
                     "readwrite": 1 if disk.writable else 0}
            if disk.script:
                entry["script"] = disk.script
            disks.append(entry)
        vifs = config.get("vif", [])
        entries.append({"domid": record.domid, "config": {
            "c_info": {"type": record.data.get("type", "pv"), "name": record.name,
                       "uuid": record.data.get("uuid", "")},
            "b_info": {"max_vcpus": int(record.data.get("vcpus", 1)),
                       "max_memkb": int(record.data.get("memory", 0)) * 1024,
                       "target_memkb": int(record.data.get("memory", 0)) * 1024},
            "disks": disks,
            "nics": [{"bridge": dict(kv.split("=", 1) for kv in str(v).split(",") if "=" in kv).get("bridge", "")}
                     for v in (vifs if isinstance(vifs, list) else [vifs])],
            "on_poweroff": record.data.get("on_poweroff"),
            "on_reboot": record.data.get("on_reboot"),
            "on_crash": record.data.get("on_crash"),
        }})
    sys.stdout.write(json.dumps(entries, indent=4) + "\n")
    return 0


def cmd_create(host: SimHost, args) -> int:
    filename = None
    if args and not args[0].startswith("-") and "=" not in args[0]:
        filename, args = args[0], args[1:]
    opts, positional = getopt(args, "Fnqf:pcdeVAi", {"dryrun": ("n", False), "quiet": ("q", False),
                                                      "defconfig": ("f", True), "vncviewer": ("V", False),
                                                      "vncviewer-autopass": ("A", False)})
    flags = dict(opts)
    if "h" in flags:
        print("Usage: xl [-vfN] create <ConfigFile> [options] [vars]\n\nCreate a domain from config file <filename>.")
        return 0
    extras = []
    for arg in positional:
        if "=" in arg:
            extras.append(arg)
        elif filename is None:
            filename = arg
        else:
            return 2
    filename = flags.get("f", filename)
    if filename is None:
        raise Exit(6, "Config file not specified and none in save file")
    try:
        with open(filename, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
    except OSError as error:
        raise Exit(3, f"Failed to read config file: {filename}: {error.strerror}") from None
    if "q" not in flags:
        err(f"Parsing config from {filename}")
    text = text + "\n" + "".join(e + "\n" for e in extras) + "\n"
    config = parse_config_text(text, filename)
    name = config.name
    if not name:
        raise Exit(1, "Domain name must be specified.")
    kind = config.string("type") or ("hvm" if config.string("builder") == "hvm" else "pv")
    if kind in ("pv", "pvh") and not (config.string("kernel") or config.string("bootloader")):
        raise Exit(1, "Neither kernel nor bootloader specified")
    if "n" in flags:
        import json
        sys.stdout.write(json.dumps({"c_info": {"type": kind, "name": name}}, indent=4) + "\n")
        return 0
    behaviour = host.fault("create")
    if behaviour.startswith("slow:"):
        time.sleep(float(behaviour.split(":", 1)[1]))
    with host:
        host.reconcile(respawn(host))
        if behaviour == "fail":
            domid = host.allocate_domid()
            raise Exit(3, "\n".join([
                f"libxl: error: libxl_create.c:1640:domcreate_rebuild_done: Domain {domid}:cannot (re-)build domain: -3",
                f"libxl: error: libxl_domain.c:1183:libxl__destroy_domid: Domain {domid}:Non-existant domain",
                f"libxl: error: libxl_domain.c:1137:domain_destroy_callback: Domain {domid}:Unable to destroy guest",
                f"libxl: error: libxl_domain.c:1064:domain_destroy_cb: Domain {domid}:Destruction of domain failed"]))
        record = create_domain(host, text, filename, name, paused="p" in flags)
        if behaviour == "crash":
            host.kill_guest(record)
    return 0


def cmd_shutdown(host: SimHost, args, reboot: bool = False) -> int:
    opts, positional = getopt(args, "awF", {"all": ("a", False), "wait": ("w", False)})
    flags = {letter for letter, _ in opts}
    verb = "reboot" if reboot else "shutdown"
    if "h" in flags:
        print(f"Usage: xl [-vf] {verb} [options] <-a|Domain>")
        return 0
    if not positional and "a" not in flags:
        raise Exit(1, "You must specify -a or a domain id.\n")
    with host:
        host.reconcile(respawn(host))
        targets = [r for r in host.domains()] if "a" in flags else [find_domain(host, positional[0])]
        for record in targets:
            err(f"{'Rebooting' if reboot else 'Shutting down'} domain {record.domid}")
            if not record.data or record.process() is None:
                raise Exit(1, f"{verb} failed (rc={ERROR_FAIL})")
            if record.data.get("pv_drivers") == "0":
                if "F" not in flags:
                    raise Exit(1, f"PV control interface not available: external graceful {verb} not possible.\n"
                                  f"Use \"-F\" to fallback to ACPI {'reset' if reboot else 'power'} event.\n"
                                  f"{verb} failed (rc={ERROR_NOPARAVIRT})")
                err(f"PV control interface not available: sending ACPI {'reset' if reboot else 'power'} button event.")
            record.signal(st.SIGUSR1 if reboot else st.SIGTERM)
    if "w" in flags:
        err(f"Waiting for {len(targets)} domains")
        for record in targets:
            while True:
                with host:
                    host.reconcile(respawn(host))
                    current = host.by_id(record.domid)
                if current is None:
                    err(f"Domain {record.domid} has been destroyed")
                    break
                if current.data.get("status", "").startswith("shutdown:"):
                    err(f"Domain {record.domid} has been shut down, reason code {0 if not reboot else 1}")
                    break
                time.sleep(0.1)
    return 0


def cmd_destroy(host: SimHost, args) -> int:
    opts, positional = getopt(args, "f")
    flags = {letter for letter, _ in opts}
    require("destroy", positional, 1)
    with host:
        host.reconcile(respawn(host))
        record = find_domain(host, positional[0])
        if record.domid == 0 and "f" not in flags:
            raise Exit(1, "Not destroying domain 0; use -f to force.\n"
                          "This can only be done when using a disaggregated hardware domain and toolstack.\n")
        if not record.data or host.fault("destroy") == "fail":
            code = ERROR_DOMAIN_NOTFOUND if not record.data else ERROR_FAIL
            raise Exit(1, "\n".join([
                f"libxl: error: libxl_domain.c:1183:libxl__destroy_domid: Domain {record.domid}:Non-existant domain",
                f"libxl: error: libxl_domain.c:1137:domain_destroy_callback: Domain {record.domid}:Unable to destroy guest",
                f"libxl: error: libxl_domain.c:1064:domain_destroy_cb: Domain {record.domid}:Destruction of domain failed",
                f"destroy failed (rc={code})"]))
        slow = host.fault("destroy")
        if slow.startswith("slow:"):
            record.data.update(status="dying", dying_until=f"{time.time() + float(slow.split(':', 1)[1]):.3f}")
            record.save()
            host.kill_guest(record)
        else:
            host.destroy(record)
    return 0


def cmd_pause(host: SimHost, args, pause: bool) -> int:
    _opts, positional = getopt(args, "")
    require("pause" if pause else "unpause", positional, 1)
    with host:
        record = find_domain(host, positional[0])
        record.signal(st.SIGSTOP if pause else st.SIGCONT)
    return 0  # xl ignores libxl's answer here


def cmd_rename(host: SimHost, args) -> int:
    _opts, positional = getopt(args, "")
    require("rename", positional, 2)
    with host:
        record = find_domain(host, positional[0])
        if not rename(host, record, positional[1]):
            raise Exit(1, f"Can't rename domain '{positional[0]}'.")
    return 0


def cmd_trigger(host: SimHost, args) -> int:
    _opts, positional = getopt(args, "")
    require("trigger", positional, 2)
    trigger = positional[1].lower()
    if trigger not in ("nmi", "reset", "init", "power", "sleep", "s3resume"):
        raise Exit(1, f'Invalid trigger "{positional[1]}"')
    with host:
        record = find_domain(host, positional[0])
        # Only HVM guests have the ACPI button; xl ignores the result either way.
        if record.data.get("type") == "hvm":
            if trigger == "power":
                record.signal(st.SIGTERM)
            elif trigger == "reset":
                record.signal(st.SIGUSR1)
    return 0


def cmd_mem_set(host: SimHost, args) -> int:
    _opts, positional = getopt(args, "")
    require("mem-set", positional, 2)
    size = positional[1]
    units = {"b": 1 / (1024 * 1024), "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}
    number, unit = (size[:-1], size[-1].lower()) if size[-1:].isalpha() else (size, "m")
    if not number.isdigit() or unit not in units:
        raise Exit(1, f"invalid memory size: {size}")
    with host:
        record = find_domain(host, positional[0])
        record.data["memory"] = str(int(int(number) * units[unit]))
        record.save()
    return 0


def cmd_info(host: SimHost, args) -> int:
    _opts, positional = getopt(args, "n", {"numa": ("n", False)})
    uname = os.uname()
    free = st.HOST_MEMORY_MIB - host.used_memory()
    cpus = os.cpu_count() or 1
    items = [
        ("host", uname.nodename), ("release", uname.release), ("version", uname.version),
        ("machine", uname.machine), ("nr_cpus", cpus), ("max_cpu_id", cpus - 1), ("nr_nodes", 1),
        ("cores_per_socket", cpus), ("threads_per_core", 1), ("cpu_mhz", "2000.000"),
        ("hw_caps", "178bfbff:f6f83203:2c100800:00000121:0000000f:219c07ab:00000000:00000100"),
        # Xen 4.17.5 as the real tier saw it (tests/sim/real_samples/xen417_xl.txt): its key
        # order and printf layout; the capabilities of hardware with HAP
        ("virt_caps", "pv hvm hvm_directio pv_directio hap shadow gnttab-v1 gnttab-v2"),
        ("total_memory", st.HOST_MEMORY_MIB), ("free_memory", free), ("sharing_freed_memory", 0),
        ("sharing_used_memory", 0), ("outstanding_claims", 0), ("free_cpus", 0),
        ("xen_major", 4), ("xen_minor", 17), ("xen_extra", ".5"), ("xen_version", "4.17.5"),
        ("xen_caps", "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64 "),
        ("xen_scheduler", "credit2"), ("xen_pagesize", 4096),
        ("platform_params", "virt_start=0xffff800000000000"), ("xen_changeset", ""),
        ("xen_commandline", "placeholder (xenha simulator)"),
        ("cc_compiler", "x86_64-linux-gnu-gcc (Debian 12.2.0-14+deb12u1) 12.2.0"),
        ("cc_compile_by", "pkg-xen-devel"), ("cc_compile_domain", "lists.alioth.debian.org"),
        ("cc_compile_date", "Sat Nov 29 13:52:25 UTC 2025"), ("build_id", "0" * 40),
        ("xend_config_format", 4),
    ]
    for key, value in items:
        line = "%-23s: %s" % (key, value)
        if positional:
            if line.startswith(positional[0]):
                print(str(value))
        else:
            print(line)
    return 0


def cmd_domid(host: SimHost, args) -> int:
    require("domid", args, 1)
    record = host.find(args[0])
    if record is None:
        raise Exit(1, f"Can't get domid of domain name '{args[0]}', maybe this domain does not exist.")
    print(record.domid)
    return 0


def cmd_migrate(host: SimHost, args) -> int:
    from xenha_lab.sim.xen import migrate  # json and struct only for migrations, not for `xl list`

    return migrate.cmd_migrate(host, args)


def cmd_migrate_receive(host: SimHost, args) -> int:
    from xenha_lab.sim.xen import migrate

    return migrate.cmd_migrate_receive(host, args)


COMMANDS = {
    "list": cmd_list, "create": cmd_create, "destroy": cmd_destroy,
    "shutdown": cmd_shutdown, "reboot": lambda h, a: cmd_shutdown(h, a, reboot=True),
    "pause": lambda h, a: cmd_pause(h, a, True), "unpause": lambda h, a: cmd_pause(h, a, False),
    "rename": cmd_rename, "trigger": cmd_trigger, "mem-set": cmd_mem_set, "info": cmd_info,
    "domid": cmd_domid,
    "migrate": cmd_migrate, "migrate-receive": cmd_migrate_receive,
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        global_opts, rest = getopt(argv, "vftNT", permute=False)
    except Exit:
        err("unknown global option")
        return 1
    if not rest:
        print("Usage xl [-vfNtT] <subcommand> [args]\n\nxl full list of subcommands:\n")
        for name in COMMANDS:
            print(" %-19s" % name)
        return 1
    command, args = rest[0], rest[1:]
    if command == "help":
        print("Usage xl [-vfNtT] <subcommand> [args]")
        return 0
    handler = COMMANDS.get(command)
    if handler is None:
        err("command not implemented")
        return 1
    host = SimHost()
    faults = host.faults()
    if faults.get("toolstack") == "down":
        sys.stderr.write(NO_CONTEXT)
        return 1
    if command in faults.get("hang", "").split(","):
        while True:  # a wedged toolstack: only a signal ends this
            time.sleep(3600)
    try:
        if command in ("list", "info", "domid"):
            host.ensure()
            if os.listdir(os.path.join(host.root, "domains")) or os.listdir(os.path.join(host.root, "pending")):
                with host:
                    host.reconcile(respawn(host))
        return handler(host, args)
    except Exit as leave:
        if leave.message:
            err(leave.message)
        return leave.code
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
