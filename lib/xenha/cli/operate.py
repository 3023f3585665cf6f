"""The day-2 commands on the live cluster: status, migrate, drain, undrain, apply,
provision (xenha.operate does the work; this module reads options and prints).

Exit codes, every command: 0 done / healthy, 1 failed, 2 usage or bad input (unknown VM
or node, a description with errors), 3 needs attention (a pre-flight check refused, the
cluster is not healthy, a drain did not complete in time).
"""

from __future__ import annotations

import functools
import json
import sys

import click

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ATTENTION = 0, 1, 2, 3
EXIT_CODES = """\b
Exit codes: 0 ok, 1 failed, 2 usage or bad input, 3 needs attention."""


class Failed(click.ClickException):
    """One line on stderr, the exit code given."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = code

    def show(self, file=None) -> None:
        click.echo(f"xenha: {self.message}", err=True)


def operation(function):
    """OperationError -> one line and its exit code."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        from xenha.operate.env import OperationError
        try:
            return function(*args, **kwargs)
        except OperationError as error:
            raise Failed(str(error), error.code) from None
    return wrapper


def _console():
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def _env():
    from xenha.operate.env import Environment

    return Environment()


# --- status --------------------------------------------------------------------------------------------------------
def render_status(view):
    """The status view as rich renderables."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    nodes = Table(title="nodes", title_justify="left", header_style="bold")
    for column in ("node", "cluster", "reachable"):
        nodes.add_column(column)
    for node in view.mon.nodes.values():
        words = [w for w, flag in (("online", node.online), ("OFFLINE", not node.online), ("standby", node.standby),
                                   ("maintenance", node.maintenance), ("UNCLEAN", node.unclean), ("DC", node.dc))
                 if flag]
        facts = view.facts.get(node.name)
        reach = "-" if facts is None else ("yes" if facts.error is None else f"[red]{facts.error}")
        nodes.add_row(node.name, " ".join(words), reach)
    vms = Table(title="VMs", title_justify="left", header_style="bold")
    for column in ("VM", "state", "node", "DRBD", "replicas (role/disk, connection)", "domains"):
        vms.add_column(column)
    for vm in view.vms:
        replicas, domains = [], []
        for node in vm.replicas:
            replica = vm.drbd.get(node)
            if replica is None:
                replicas.append(f"{node}: -")
            else:
                sync = f" sync {replica.sync_done:.0f}%" if replica.sync_done is not None else ""
                sync += " [red]I/O suspended[/]" if replica.suspended else ""
                conns = ",".join(replica.connections.values()) or "no peer"
                replicas.append(f"{node}: {replica.role}/{'/'.join(replica.disks) or '-'} {conns}{sync}")
            for name, state, memory in vm.domains.get(node, []):
                domains.append(f"{node}: {name} {state} {memory} MiB")
        colour = {"running": "green", "stopped": "yellow"}.get(vm.state, "red")
        vms.add_row(vm.name, f"[{colour}]{vm.state}", vm.node or ", ".join(vm.nodes) or "-",
                    vm.config.drbd_resource or "-", "\n".join(replicas), "\n".join(domains) or "-")
    head = Text(f"cluster: DC {view.mon.dc or 'none'}, {'quorate' if view.mon.quorum else 'NO QUORUM'}"
                f" (asked on {view.asked})")
    parts = [head, nodes, vms]
    if view.attention:
        parts.append(Text("needs attention:", style="bold red"))
        parts += [Text(f"  - {item.text}") for item in view.attention]
    else:
        parts.append(Text("all healthy", style="bold green"))
    return Group(*parts)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="the documented JSON (docs/operations.md)")
@click.option("--watch", is_flag=True, help="refresh until interrupted (Ctrl-C)")
@click.option("--interval", type=click.FloatRange(0.5, 3600), default=2.0, show_default=True,
              help="seconds between refreshes with --watch")
@operation
def status(as_json, watch, interval):
    """One view of the live cluster: per VM where it runs, its DRBD replicas (role, disk,
    connection, resync progress and ETA) and domains; nodes in standby or offline,
    failed actions, DRBD fencing constraints left behind (drbd-fence-by-handler-*),
    temporary move constraints (cli-prefer/cli-ban).

    Run it as root on a cluster node; the other nodes are asked by root ssh.

    \b
    Examples:
      xenha status                 # tables; exit 3 when something needs attention
      xenha status --json | jq '.vms[] | {name, node}'
      xenha status --watch         # refresh every 2 s
    """
    from xenha.operate.status import gather

    env = _env()
    if not watch:
        view = gather(env)
        if as_json:
            click.echo(json.dumps(view.to_json(), indent=2))
        else:
            _console().print(render_status(view))
        raise SystemExit(EXIT_OK if view.ok else EXIT_ATTENTION)
    import signal
    import time

    from rich.live import Live

    stop = []        # Ctrl-C (or SIGTERM) ends the watch after the current round, with its verdict
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.append(True))

    def pause():
        end = time.monotonic() + interval
        while not stop and time.monotonic() < end:
            time.sleep(0.1)

    view = None
    if as_json:
        while not stop:
            view = gather(env)
            click.echo(json.dumps(view.to_json()))
            pause()
    else:
        with Live(console=_console(), auto_refresh=False) as live:
            while not stop:
                view = gather(env)
                live.update(render_status(view), refresh=True)
                pause()
    raise SystemExit(EXIT_OK if view is None or view.ok else EXIT_ATTENTION)


# --- migrate -------------------------------------------------------------------------------------------------------
def _print_checks(console, checks) -> None:
    for check in checks:
        mark = "[green]ok  [/]" if check.ok else "[red]FAIL[/]"
        console.print(f"  {mark} {check.name:18} {check.reason}")


@click.command()
@click.argument("vm")
@click.argument("node")
@click.option("--dry-run", is_flag=True, help="the pre-flight checks only")
@click.option("--timeout", type=click.IntRange(10, 7200), default=300, show_default=True,
              help="seconds to wait for the VM to run on NODE")
@click.option("--lifetime", type=click.IntRange(60, 86400), default=600, show_default=True,
              help="seconds the temporary move constraint lives if it is not cleared")
@click.option("--json", "as_json", is_flag=True, help="the result as JSON")
@operation
def migrate(vm, node, dry_run, timeout, lifetime, as_json):
    """Live-migrate VM to NODE: pre-flight checks with reasons (NODE is a replica, online,
    not in standby; DRBD there Connected, UpToDate, Promoted; the domU config there;
    free memory by `xl info`; the migration address answers; no failed actions), then a
    Pacemaker move with a lifetime, progress until the VM runs on NODE, and the
    temporary constraint cleared. On failure: the state, and what to do.

    \b
    Examples:
      xenha migrate shaolin mk2 --dry-run   # the checks only
      xenha migrate shaolin mk2
    """
    from xenha.operate.migrate import migrate as run_migrate

    console = _console()

    def progress(kind, **data):
        if as_json:
            return
        if kind == "checks":
            console.print(f"pre-flight checks for {vm} -> {node}:")
            _print_checks(console, data["checks"])
        elif kind == "moving":
            console.print(f"moving: {data['constraint']} (lifetime {data['lifetime_s']} s)")
        elif kind == "state":
            console.print(f"  {data['seconds']:5.1f} s  {vm} {data['state']} on {', '.join(data['nodes']) or '-'}")
        elif kind == "cleared":
            console.print(f"cleared {data['constraint']}")

    from xenha.operate.env import OperationError

    seen = {}

    def with_checks(kind, **data):
        if kind == "checks":
            seen["checks"] = data["checks"]
        progress(kind, **data)
    try:
        result = run_migrate(_env(), vm, node, timeout=timeout, lifetime_s=lifetime, dry_run=dry_run,
                             progress=with_checks)
    except OperationError as error:
        if as_json and "checks" in seen:           # a script sees which checks failed
            click.echo(json.dumps({"dry_run": dry_run, "vm": vm, "target": node, "ok": False,
                                   "checks": [c.to_json() for c in seen["checks"]]}, indent=2))
        raise Failed(str(error), error.code) from None
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, **result.to_json()}, indent=2))
    elif dry_run:
        console.print(f"dry run: {vm} can migrate from {result.source} to {node}")
    else:
        console.print(f"[green]{vm} runs on {node}[/] (migrated from {result.source} in {result.seconds:.1f} s)")


# --- drain / undrain -----------------------------------------------------------------------------------------------
def _print_plan(console, the_plan, already) -> None:
    console.print(f"plan (crm_simulate on the live CIB with {the_plan.node} in standby):"
                  + (" [yellow]the node is in standby already: what is left to do[/]" if already else ""))
    if not the_plan.vms:
        console.print("  no VM to move")
    for item in the_plan.vms:
        how = {"Migrate": "live migration", "Move": "stop and start (not live)",
               "Stop": "stopped, started nowhere"}.get(item.action, item.action.lower())
        console.print(f"  {item.resource:20} {item.source or '-'} -> {item.target or '-'}  {how}")


@click.command()
@click.argument("node")
@click.option("--dry-run", is_flag=True, help="the plan only; nothing changes")
@click.option("--timeout", type=click.IntRange(10, 86400), default=600, show_default=True,
              help="seconds to wait for the node to be empty")
@click.option("--json", "as_json", is_flag=True, help="the plan and report as JSON")
@operation
def drain(node, dry_run, timeout, as_json):
    """Empty NODE for maintenance: the plan first (which VM goes where, computed by
    crm_simulate on the live CIB with the standby applied), then standby, progress per
    VM until the node is empty or the wait ends, then a report (moved, failed, time
    each). The drain is the cluster's standby: interrupting xenha does not stop it,
    running `xenha drain NODE` again shows its progress. `xenha undrain NODE` ends it.

    \b
    Examples:
      xenha drain mk1 --dry-run
      xenha drain mk1 && reboot-mk1-for-maintenance && xenha undrain mk1
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from xenha.operate.drain import drain as run_drain

    console = _console()
    bar = {"progress": None, "task": None}

    def progress(kind, **data):
        if as_json:
            return
        if kind == "plan":
            _print_plan(console, data["plan"], data["already"])
        elif kind == "standby":
            console.print(f"{data['node']} is in standby: its resources leave")
        elif kind == "moved":
            move = data["move"]
            text = {"moved": f"[green]moved[/] to {move.target}", "failed": "[red]FAILED[/]",
                    "stopped": "[yellow]stopped[/]"}[move.outcome]
            line = f"  {move.vm:20} {text} after {move.seconds:.1f} s"
            if bar["progress"] is not None:
                bar["progress"].console.print(line)
                bar["progress"].advance(bar["task"])
            else:
                console.print(line)
        elif kind == "timeout":
            console.print(f"[red]still on {node}: {', '.join(data['left']) or '-'}")

    if dry_run or as_json:
        report = run_drain(_env(), node, timeout=timeout, dry_run=dry_run, progress=progress)
    else:
        with Progress(TextColumn("draining"), BarColumn(), TextColumn("{task.completed}/{task.total} VMs"),
                      TimeElapsedColumn(), console=console, transient=True) as shown:
            def with_bar(kind, **data):
                progress(kind, **data)
                if kind == "following":
                    bar["progress"] = shown
                    bar["task"] = shown.add_task("drain", total=len(data["moves"]))
            report = run_drain(_env(), node, timeout=timeout, dry_run=False, progress=with_bar)
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, **report.to_json()}, indent=2))
    elif not dry_run:
        for move in report.moves:
            if move.outcome == "pending":
                console.print(f"  {move.vm:20} [red]still on {node}[/]")
        console.print(f"[green]{node} is empty[/] after {report.seconds:.1f} s" if report.ok else
                      f"[red]{node} is not drained[/] after {report.seconds:.1f} s (`xenha status`; "
                      f"`xenha drain {node}` again to follow it)")
    if not dry_run and not report.ok:
        raise SystemExit(EXIT_ATTENTION)


@click.command()
@click.argument("node")
@operation
def undrain(node):
    """Take NODE out of standby (the end of `xenha drain NODE`); VMs stay where they run
    (stickiness) until moved.

    \b
    Example:
      xenha undrain mk1
    """
    from xenha.operate.drain import undrain as run_undrain

    if run_undrain(_env(), node):
        click.echo(f"{node} is out of standby")
    else:
        click.echo(f"{node} was not in standby: nothing changed")




# --- provision -----------------------------------------------------------------------------------------------------
class _NodeTransport:
    """The provisioner's transport over the environment: this node directly, the others
    by root ssh."""

    def __init__(self, env):
        self.env = env

    def run(self, node, argv, timeout=60.0, input=None):
        return self.env.on_node(node, argv, timeout, input)


def _prepared(path: str):
    """The rendering of a description, or exit 2 with every problem (one line each)."""
    from xenha.cluster.description import DescriptionError
    from xenha.render import files

    try:
        return files.prepare(path)
    except DescriptionError as problem:
        raise Failed("; ".join(problem.problems), EXIT_USAGE) from None


@click.command(name="apply")
@click.argument("description_file", metavar="CLUSTER", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="show the difference only")
@click.option("--remove-running", is_flag=True, help="also remove VMs that run (they are stopped)")
@click.option("--json", "as_json", is_flag=True, help="the changes as JSON")
@operation
def apply_command(description_file, dry_run, remove_running, as_json):
    """Bring the live Pacemaker configuration to what CLUSTER renders: the difference
    first (objects to create, change, remove: resources, constraints, properties,
    defaults, node attributes, the VM tag), then all of it in one CIB transaction
    (`pcs cluster cib-push diff-against`). Changed settings of existing objects are
    changed in place (a VM's memory reaches its utilization without a restart; a changed
    parameter restarts what Pacemaker restarts). Only what xenha made is changed or
    removed; a running VM is not removed unless --remove-running.

    \b
    Examples:
      xenha apply /etc/xenha/howto.toml --dry-run
      xenha apply /etc/xenha/howto.toml
    """
    from xenha.operate.apply import apply as run_apply

    rendering = _prepared(description_file)
    result = run_apply(_env(), rendering, dry_run=dry_run, allow_remove_running=remove_running)
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, **result.to_json()}, indent=2))
        return
    if not result.changes:
        click.echo("the live configuration is what the description renders: nothing to do")
        return
    for change in result.changes:
        click.echo(change.text())
    counts = {a: sum(c.action == a for c in result.changes) for a in ("create", "change", "remove")}
    summary = ", ".join(f"{n} to {a}" for a, n in counts.items() if n)
    click.echo(f"dry run: {summary}; nothing changed" if dry_run else f"applied in one CIB transaction: {summary}")


@click.command()
@click.argument("description_file", metavar="CLUSTER", type=click.Path(dir_okay=False))
@click.argument("vms", nargs=-1)
@click.option("--no-pacemaker", is_flag=True, help="storage and files only; leave the CIB alone")
@click.option("--sync-timeout", type=click.IntRange(10, 86400), default=3600, show_default=True,
              help="seconds the initial syncs may take")
@click.option("--skip-initial-sync", is_flag=True,
              help="no initial sync for new resources: every replica is declared UpToDate at once (drbdadm "
                   "new-current-uuid --clear-bitmap). Only for new, empty volumes whose contents nobody "
                   "will read before writing them (a new disk a guest installer formats): the replicas' "
                   "old blocks are not made equal")
@operation
def provision(description_file, vms, no_pacemaker, sync_timeout, skip_initial_sync):
    """Provision the description on its nodes: on each replica the DRBD resource file and
    the xl config, the LV, DRBD meta-data (never over existing meta-data), `drbdadm up`;
    the initial sync of each new resource (progress from DRBD's own); then the Pacemaker
    configuration in one CIB transaction. Every step looks first: a second run changes
    nothing, an interrupted run resumes; an LV or DRBD resource that exists with other
    settings is refused with the reason. Nodes are reached by root ssh.

    \b
    Examples:
      xenha provision /etc/xenha/howto.toml
      xenha provision /etc/xenha/howto.toml shaolin    # one VM's storage and files
      xenha provision /etc/xenha/howto.toml --skip-initial-sync   # new empty volumes
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from xenha.operate.env import OperationError
    from xenha.provision.cluster import ProvisionError, Provisioner
    from xenha.render import files as render_files

    rendering = _prepared(description_file)
    known = {vm.name for vm in rendering.description.vms}
    unknown = [vm for vm in vms if vm not in known]
    if unknown:
        raise Failed(f"{description_file}: no VM {', '.join(unknown)} (VMs: {', '.join(sorted(known))})", EXIT_USAGE)
    if rendering.added:
        try:
            render_files.commit([(rendering.allocation_path, rendering.allocation_text)])
        except render_files.WriteError as error:
            raise Failed(f"cannot record the DRBD numbers of {', '.join(rendering.added)}: {error}") from None
    console = _console()
    created = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                  TimeElapsedColumn(), console=console) as shown:
        bars = {}

        def progress(kind, **data):
            if kind == "phase":
                shown.console.print(f"[bold]{data['name']}")
            elif kind == "step":
                entry = data["result"]
                if entry["outcome"] == "created":
                    created.append(entry)
                    shown.console.print(f"  {data['node']}: {entry['op']} {entry['target']}: created")
            elif kind == "sync":
                resource = data["resource"]
                if resource not in bars:
                    bars[resource] = shown.add_task(f"sync {resource}", total=100)
                done = data.get("done")
                disks = [d for ds in data["disks"].values() for d in (ds or [])]
                if disks and all(d == "UpToDate" for d in disks):
                    done = 100.0
                if done is not None:
                    shown.update(bars[resource], completed=done)

        provisioner = Provisioner(_NodeTransport(_env()), rendering.description, rendering.slots, rendering.files,
                                  vms=set(vms) if vms else None, progress=progress)
        try:
            report = provisioner.run(sync_timeout=sync_timeout, pacemaker=False, skip_initial_sync=skip_initial_sync)
            if not no_pacemaker:
                from xenha.operate.apply import apply as run_apply

                shown.console.print("[bold]pacemaker")
                applied = run_apply(_env(), rendering, allow_remove_running=False, vms=set(vms) if vms else None)
                for change in applied.changes:
                    if change.action != "remove":
                        created.append(change)
                    shown.console.print(f"  {change.text()}")
                if any(c.action == "remove" for c in applied.changes):
                    shown.console.print("  (objects the description no longer has were removed: "
                                        "`xenha apply --dry-run` shows such changes first)")
        except (ProvisionError, OperationError) as error:
            raise Failed(f"provisioning stopped: {error} (fix it and run the same command again: "
                         "done steps are kept)") from None
        for task in bars.values():
            shown.update(task, completed=100)
    timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report.timings.items())
    if report.changed() or created:
        console.print(f"[green]provisioned[/]: {len(created)} changes ({timings})")
    else:
        console.print(f"nothing to do: everything was provisioned already ({timings})")



def commands() -> list[click.Command]:
    chosen = [status, migrate, drain, undrain, apply_command, provision]
    for command in chosen:
        command.epilog = EXIT_CODES
    return chosen
