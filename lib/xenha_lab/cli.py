"""The lab's commands, added to the `xenha` command when the lab is installed
(`make install-lab`): `xenha demo` and `xenha lab ...`.

Kept light: the `xenha` launcher (bin/xenha.in) imports this module at start-up when
the lab is installed, so everything heavy is imported inside the commands.
"""

from __future__ import annotations

import sys

import click

from xenha.ocf import codes


def _rc_text(rc: int) -> str:
    return f"{rc} {codes.name(rc)[4:] if codes.name(rc).startswith('OCF_') else codes.name(rc)}"


@click.group(invoke_without_command=True)
@click.option("--dir", "directory", default="/run/xenha-demo", show_default=True, type=click.Path(file_okay=False),
              help="the demo lab's directory")
@click.option("--cluster", "description", type=click.Path(dir_okay=False, exists=True),
              help="a two-node cluster description (default: the howto's)")
@click.option("--keep", is_flag=True, help="leave the lab running at the end (`xenha lab --dir DIR down` ends it)")
@click.pass_context
def demo(ctx, directory, description, keep):
    """The howto's cluster in the lab: provisioned from its description, then a live
    migration (pcs resource move), a drain (pcs node standby), a power cut fenced and
    failed over with every acknowledged write intact; each step timed (root).

    `xenha demo agents` runs the older demo of the Xen agent alone."""
    if ctx.invoked_subcommand is not None:
        return
    from xenha_lab.demo import ClusterDemo

    from rich.console import Console

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    result = ClusterDemo(_DemoPrinter(console), directory, description, keep).run()
    if not result.ok:
        sys.exit(1)


class _DemoPrinter:
    """The cluster demo's narration on a rich console."""

    def __init__(self, console):
        self.console = console

    def __call__(self, kind, **data):
        out = self.console
        if kind == "title":
            out.rule("[bold]xenha demo: the howto's cluster in the lab")
            out.print(f"description {data['description']}; nodes {', '.join(data['nodes'])}; "
                      f"lab in {data['directory']}")
            out.print("real corosync, pacemakerd, pcs, drbdadm, lvm2 and OpenSSH in namespace nodes; simulated: "
                      "the Xen hypervisor, the DRBD kernel, LV activation. The guest writes to its disk all along.")
        elif kind == "phase":
            out.print(f"\n[bold cyan]>> {data['title']}")
        elif kind == "progress":
            out.print(f"   [dim]{data['text']}")
        elif kind == "step":
            step = data["result"]
            pause = f", guest paused {step.pause * 1000:.0f} ms" if step.pause is not None else ""
            out.print(f"   [green]done in {step.seconds:.1f} s{pause}[/]" + (f": {step.note}" if step.note else ""))
        elif kind == "table":
            from xenha_lab.lab.snapshot import table

            out.print(table(data["snapshot"], data["title"]))
        elif kind == "done":
            self.summary(data["result"])

    def summary(self, result):
        from rich.table import Table

        out = self.console
        grid = Table(title="step times", title_justify="left", header_style="bold")
        grid.add_column("step")
        grid.add_column("seconds", justify="right")
        grid.add_column("guest pause", justify="right")
        for step in result.steps:
            grid.add_row(step.title, f"{step.seconds:.1f}", f"{step.pause * 1000:.0f} ms" if step.pause else "")
        grid.add_row("[bold]total", f"[bold]{result.total:.1f}", "")
        out.print()
        out.print(grid)
        out.print(f"invariants sampled {result.samples} times from the nodes' own state: "
                  + ("[green]never broken" if not result.violations else f"[red]broken: {result.violations[0]}"))
        if result.failure:
            out.print(f"[red bold]demo failed: {result.failure}")
        elif result.ok:
            out.print("[green bold]every step as expected")


@demo.command(name="agents")
def demo_agents():
    """Run the Xen domain agent through start, live migration and stop on two
    simulated Xen hosts (no Xen, DRBD or cluster needed)."""
    from xenha_lab import demo_agents as scenario

    def report(kind, payload):
        if kind == "intro":
            click.secho("xenha demo: the OCF agent ocf:xenha:xen-domain on two simulated Xen hosts (mk1, mk2)",
                        bold=True)
            click.echo("xl is xenha's simulator (same commands, output and exit codes; guests are processes);\n"
                       "the agent is the installed one, called as Pacemaker calls it.\n")
            click.echo(f"domain config {payload['config']} (the howto's, unchanged):")
            for line in payload["text"].splitlines():
                click.echo(f"    {line}")
            click.echo()
            click.secho(f"{'#':>2}  {'node':4}  {'OCF call':20}  {'exit code':24}  {'mk1':28}  mk2", bold=True)
        elif kind == "step":
            step = payload
            colour = "green" if step.as_expected else "red"
            click.echo(f"{step.number:>2}  {step.call.node:4}  {step.label:20}  ", nl=False)
            click.secho(f"{_rc_text(step.call.rc):24}", fg=colour, nl=False)
            click.echo(f"  {step.states['mk1']:28}  {step.states['mk2']}")
            if step.call.exit_reason:
                click.echo(f"{'':30}exit reason: {step.call.exit_reason}")
        elif kind == "note":
            click.secho(f"    -> {payload}", fg="cyan")
        elif kind == "summary":
            if payload["ok"]:
                click.secho("\nEvery call answered as Pacemaker expects.", fg="green", bold=True)
            else:
                bad = [s.number for s in payload["steps"] if not s.as_expected]
                click.secho(f"\nUnexpected answers at steps {bad}.", fg="red", bold=True)
        elif kind == "render":
            click.secho("\nxenha demo, part 2: the howto as a cluster description "
                        f"({payload['path']})", bold=True)
            click.echo("xenha render writes: " + ", ".join(payload["files"]))
            click.echo("and Pacemaker's own scheduler (crm_simulate, offline) decides:")
        elif kind == "transition":
            click.secho(f"  {payload['step']}:", fg="cyan" if payload["ok"] else "red")
            for line in payload["lines"] or ["(nothing to do)"]:
                click.echo(f"      {line}")

    agent_ok = scenario.run(report)
    scheduler_ok = scenario.run_scheduler(report)
    if not (agent_ok and scheduler_ok):
        sys.exit(1)


# --- xenha lab -----------------------------------------------------------------------------------------------------

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def _duration(text: str) -> float:
    """Seconds from 90, 90s, 30m or 4h."""
    unit = DURATION_UNITS.get(text[-1:], None)
    number = text[:-1] if unit else text
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        raise click.BadParameter(f"{text!r}: a duration such as 90s, 30m or 4h") from None
    if not 10 <= seconds <= 7 * 86400:
        raise click.BadParameter(f"{text!r}: between 10 s and 7 days")
    return seconds


def _attach(directory: str):
    """The lab in `directory`, whichever backend made it."""
    from xenha_lab.realkernel.layout import is_real_lab

    if is_real_lab(directory):
        from xenha_lab.realkernel.backend import QemuLab
        return QemuLab.attach(directory)
    from xenha_lab.lab.namespace import NamespaceLab
    return NamespaceLab.attach(directory)


def _lab_errors(function):
    """LabError -> one line and exit 1 (click prints `Error: ...`)."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        from xenha_lab.lab.backend import LabError
        try:
            return function(*args, **kwargs)
        except LabError as error:
            raise click.ClickException(str(error)) from None
    return wrapper


@click.group()
@click.option("--dir", "directory", envvar="XENHA_LAB_DIR", default="/run/xenha-lab", show_default=True,
              type=click.Path(file_okay=False), help="the lab's directory (env XENHA_LAB_DIR)")
@click.pass_context
def lab(ctx, directory):
    """A real Pacemaker/Corosync cluster of namespace nodes on this machine (root).

    Each node has its own network, mount, UTS, PID and IPC namespaces, its own /run,
    /dev/shm, /etc and /var layers, the simulated xl, drbdsetup and LVM tools first on
    its PATH, and runs corosync and pacemakerd; fencing goes through the lab's power
    switch (fence_xenha_lab). Nothing of the host's /etc, /usr or services is touched.
    """
    import os
    ctx.obj = os.path.abspath(directory)


@lab.command()
@click.option("--nodes", type=click.IntRange(2, 3), default=None, help="how many nodes (2 or 3; default 3)")
@click.option("--cluster", "description", type=click.Path(dir_okay=False),
              help="a cluster description: the lab has its nodes (names, addresses) and is provisioned from it")
@click.option("--no-provision", is_flag=True, help="with --cluster: the nodes only, nothing provisioned")
@click.option("--lifetime", default="4h", show_default=True,
              help="the lab stops by itself after this long (the power switch with it)")
@click.option("--timeout", type=click.IntRange(10, 900), default=None,
              help="seconds to wait for the cluster (120; 420 with --real)")
@click.option("--real", is_flag=True,
              help="QEMU nodes with real Xen 4.17, the kernel's DRBD 8.4 and LVM (2 nodes, slow: minutes; "
                   "node images built from Debian packages on first use); the cluster description "
                   "(default: the lab's own) is provisioned, its VMs run the lab's PV guest")
@click.pass_obj
@_lab_errors
def up(directory, nodes, description, no_provision, lifetime, timeout, real):
    """Start the nodes and the cluster, fencing configured (an earlier lab in the
    directory is cleaned up first). With --cluster, xenha provisions the description on
    the nodes (LVs, DRBD meta-data and initial sync, xl configs, the Pacemaker
    configuration through pcs, the lab's power switch as fence devices) and waits
    until every VM runs."""
    from xenha_lab.lab.namespace import NamespaceLab

    seconds = _duration(lifetime)
    if real:
        _up_real(directory, nodes, description, seconds, timeout or 420, do_provision=not no_provision)
        return
    timeout = timeout or 120
    if description:
        backend = NamespaceLab.from_description(directory, description, lifetime_s=seconds)
        if nodes is not None and nodes != len(backend.nodes):
            raise click.ClickException(f"--nodes {nodes}, but {description} has {len(backend.nodes)} nodes")
    else:
        backend = NamespaceLab.create(directory, nodes or 3, lifetime_s=seconds)
    timings = backend.up(timeout=timeout, progress=lambda message: click.echo(f"lab: {message}"))
    click.echo("lab: nodes booted in {booted:.1f} s, all online in {online:.1f} s, fencing ready in "
               "{ready:.1f} s".format(**timings))
    if description and not no_provision:
        from xenha_lab.lab.provision import provision

        def progress(kind, **data):
            if kind == "phase":
                click.echo(f"provision: {data['name']}")
            elif kind == "step" and data["result"]["outcome"] != "unchanged":
                entry = data["result"]
                click.echo(f"provision: {data['node']}: {entry['op']} {entry['target']}: {entry['outcome']}")
        report = provision(backend, description, progress=progress)
        click.echo("provision: done in {:.1f} s".format(report.timings["total"]))
    _print_status(backend)


def _up_real(directory: str, nodes, description, lifetime: float, timeout: float, do_provision: bool) -> None:
    import os

    from xenha_lab.realkernel import provision
    from xenha_lab.realkernel.backend import QemuLab

    if nodes not in (None, 2):
        raise click.ClickException("the real-kernel lab has 2 nodes")
    backend = QemuLab.from_description(directory, description or provision.default_description(),
                                       lifetime_s=lifetime)
    timings = backend.up(timeout=timeout, progress=lambda message: click.echo(f"lab: {message}"))
    click.echo("lab: machines booted in {booted:.1f} s, all online in {online:.1f} s, fencing ready in "
               "{ready:.1f} s".format(**timings))
    if not do_provision:
        _print_status(backend)
        return
    vms, steps = provision.provision(backend, description, say=lambda message: click.echo(f"lab: {message}"))
    click.echo(f"lab: provisioned {', '.join(vm.name for vm in vms)} in {steps['cib']:.1f} s; the VMs start now "
               "(their consoles: " + os.path.join(backend.lay.share, "xenlog") + ")")
    _print_status(backend)


@lab.command()
@click.pass_obj
@_lab_errors
def down(directory):
    """Stop every node and the lab; nothing stays behind."""
    import os

    if not os.path.exists(directory):
        click.echo(f"lab: nothing in {directory}")
        return
    timings = _attach(directory).down()
    click.echo(f"lab: down in {timings['down']:.1f} s")


def _print_status(backend, as_json: bool = False) -> None:
    import json
    import os

    state = backend.status()
    view = backend.cluster.status() if backend.powered() else None
    if as_json:
        click.echo(json.dumps({"lab": {k: v for k, v in state.items() if k != "ok"},
                               "cluster": view.to_json() if view else None}, indent=2))
        return
    cluster_nodes = view.nodes if view else {}
    click.secho(f"{'node':8} {'address':13} {'power':5} {'phase':9} {'link':4} {'seg':3}  cluster", bold=True)
    for node in state["nodes"]:
        seen = cluster_nodes.get(node["name"])
        words = []
        if seen:
            words.append("online" if seen.online else "OFFLINE")
            words += [w for w, flag in (("standby", seen.standby), ("UNCLEAN", seen.unclean),
                                        ("pending", seen.pending), ("DC", seen.dc)) if flag]
        click.echo(f"{node['name']:8} {node['address']:13} {node['power']:5} {node['phase']:9} "
                   f"{node['link']:4} {node['segment']:3}  {' '.join(words) or '-'}")
    if view:
        for rsc in view.resources.values():
            where = ", ".join(rsc.nodes) or "-"
            click.echo(f"  {rsc.id} ({rsc.agent}): {rsc.role} on {where}" + ("  FAILED" if rsc.failed else ""))
        click.echo(f"  DC {view.dc or 'none'}, {'quorate' if view.quorum else 'NO QUORUM'} "
                   f"(as {view.asked} sees it)")
    description = getattr(backend.spec, "description", None)   # the real-kernel lab's spec has none (yet)
    if description and os.path.exists(description):
        from rich.console import Console

        from xenha_lab.lab import snapshot
        from xenha_lab.lab.provision import rendering

        parsed, slots, _files = rendering(description)
        vms = [(vm.name, slots[vm.name].resource, tuple(vm.replicas)) for vm in parsed.vms]
        if vms:
            Console(highlight=False, width=None if sys.stdout.isatty() else 120).print(snapshot.table(snapshot.take(backend, vms), "VMs, by the nodes themselves"))


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable")
@click.pass_obj
@_lab_errors
def status(directory, as_json):
    """Each node's power, boot phase and link, and the cluster as a node sees it."""
    _print_status(_attach(directory), as_json)


@lab.command(name="exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("node")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
@_lab_errors
def exec_(directory, node, command):
    """Run COMMAND inside NODE (a shell without one): `xenha lab exec n1 -- crm_mon -1`."""
    import os

    command = list(command)
    if command[:1] == ["--"]:
        command = command[1:]
    backend = _attach(directory)
    if not hasattr(backend, "enter_argv"):          # a QEMU node: commands through its channel, no terminal
        if not command:
            raise click.ClickException("a real-kernel node has no interactive shell here: give a command")
        result = backend.run(node, command, timeout=600)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        raise SystemExit(124 if result.timed_out else result.returncode)
    argv = backend.enter_argv(node, command or ["bash", "-i"])
    term = os.environ.get("TERM", "dumb")
    argv = [f"TERM={term}" if arg == "TERM=dumb" else arg for arg in argv]
    sys.stdout.flush()
    os.execvp(argv[0], argv)


@lab.command()
@click.argument("action", type=click.Choice(["off", "on", "reboot"]))
@click.argument("node")
@click.pass_obj
@_lab_errors
def power(directory, action, node):
    """Cut, restore or cycle NODE's power (off is a power cut: no orderly shutdown)."""
    _attach(directory).power(node, action)
    click.echo(f"lab: {node} power {action}")


@lab.command()
@click.argument("nodes", nargs=-1, required=True)
@click.pass_obj
@_lab_errors
def partition(directory, nodes):
    """Split the network: NODES on one side, the others on the other
    (`/` separates more groups: `xenha lab partition n1 / n2`)."""
    groups, current = [], []
    for word in nodes:
        if word == "/":
            groups.append(current)
            current = []
        else:
            current.append(word)
    groups.append(current)
    if any(not group for group in groups):
        raise click.ClickException("empty group of nodes")
    backend = _attach(directory)
    backend.partition(*groups)
    named = {node for group in groups for node in group}
    others = [node for node in backend.nodes if node not in named]
    click.echo("lab: partitioned: " + " | ".join(" ".join(g) for g in groups + ([others] if others else [])))


@lab.command()
@click.pass_obj
@_lab_errors
def heal(directory):
    """One network again, every link up."""
    _attach(directory).heal()
    click.echo("lab: network healed")


def commands() -> list[click.Command]:
    """The commands this package adds to `xenha`."""
    return [demo, lab]
