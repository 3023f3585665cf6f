"""`xenha migrate VM NODE`: pre-flight checks, then a Pacemaker move with a lifetime,
progress until the VM runs there, then the temporary constraint cleared.

    checks = preflight(env, view, vm, node)       # every check, passed or not, with its reason
    result = migrate(env, vm, node, progress=...)   # raises OperationError with the state

The checks (Ganeti's CheckPrereq, in xenha's terms): the VM runs on exactly one node and
not already on the target; the target is one of its replicas, online and not in
standby; DRBD there is Connected, UpToDate and Promoted; the domU config exists there;
the target's free memory (xl info) holds the domain's; the migration address answers
through the migration transport from the source; no failed action is pending for the VM,
its DRBD or LV clone; no other temporary move constraint is on the VM.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from xenha.operate import state as S
from xenha.operate.env import Environment, OperationError
from xenha.operate.status import gather, last_words, node_facts

DEFAULT_LIFETIME_S = 600
POLL_S = 0.5


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    reason: str

    def to_json(self) -> dict:
        return {"check": self.name, "ok": self.ok, "reason": self.reason}


@dataclass(frozen=True)
class Probes:
    """What the pre-flight asks the nodes beyond the status view."""
    config_present: bool | None = None          # the domU config on the target
    config_error: str = ""
    address: str = ""
    address_reachable: bool | None = None       # from the source, through the migration transport
    address_error: str = ""
    free_memory_mib: int | None = None


def known(view: S.ClusterView, vm: str, node: str) -> None:
    """Bad input (exit 2) for an unknown VM or node."""
    if vm not in view.cib.vms:
        names = ", ".join(sorted(view.cib.vms)) or "none"
        raise OperationError(f"unknown VM {vm!r} (VMs in the cluster: {names})", code=2)
    if node not in view.mon.nodes:
        raise OperationError(f"unknown node {node!r} (nodes: {', '.join(view.mon.nodes)})", code=2)


def migration_address(view: S.ClusterView, vm: str, node: str) -> str:
    attribute = view.cib.vms[vm].migration_address_attribute
    if attribute:
        return view.cib.node_attributes.get(node, {}).get(attribute) or node
    return node


def probe(env: Environment, view: S.ClusterView, vm: str, node: str) -> Probes:
    """The checks that need the nodes: the config on the target, free memory there, the
    migration address from the source."""
    config = view.cib.vms[vm]
    found = {}
    target_node = view.mon.nodes.get(node)
    if target_node is not None and target_node.online:
        try:
            result = env.on_node(node, ["test", "-r", config.config], 15.0)
            found["config_present"] = result.returncode == 0 and not result.timed_out
            if not found["config_present"] and result.returncode not in (0, 1):
                found["config_error"] = last_words(result)
        except OperationError as error:
            found["config_error"] = str(error)
        found["free_memory_mib"] = node_facts(env, node, memory=True).free_memory_mib
    source = view.vm(vm).node if view.vm(vm) else None
    address = migration_address(view, vm, node)
    found["address"] = address
    if source and source != node:
        from xenha.tools.xl import address_problem, transport_problem

        problem = transport_problem(config.migration_transport) or address_problem(address)
        if problem:
            found["address_reachable"], found["address_error"] = False, f"unusable: {problem}"
        else:
            argv = config.migration_transport.split() + [address, "true"]
            if argv[0] == "ssh":
                argv[1:1] = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]
            try:
                result = env.on_node(source, argv, 20.0)
                found["address_reachable"] = result.returncode == 0 and not result.timed_out
                if not found["address_reachable"]:
                    found["address_error"] = last_words(result)
            except OperationError as error:
                found["address_reachable"], found["address_error"] = False, str(error)
    return Probes(**found)


def preflight(view: S.ClusterView, vm: str, node: str, probes: Probes) -> list[Check]:
    """Every check with its verdict and reason (pure)."""
    known(view, vm, node)
    config, here = view.cib.vms[vm], view.vm(vm)
    target = view.mon.nodes[node]
    checks = []

    def check(name, ok, good, bad):
        checks.append(Check(name, bool(ok), good if ok else bad))

    check("running", here.state == "running" and here.node,
          f"{vm} runs on {here.node}",
          f"{vm} is {here.state}" + (f" on {', '.join(here.nodes)}" if here.nodes else "")
          + ": only a VM running on one node can be migrated")
    check("elsewhere", here.node != node, f"{vm} is not on {node} yet", f"{vm} already runs on {node}")
    check("replica", node in here.replicas, f"{node} holds a replica of {vm}",
          f"{node} is not a replica of {vm} (replicas: {', '.join(here.replicas)})")
    check("target-available", target.available, f"{node} is online and not in standby",
          f"{node} is " + ", ".join(w for w, flag in (("offline", not target.online), ("in standby", target.standby),
                                                      ("in maintenance", target.maintenance),
                                                      ("unclean", target.unclean), ("shutting down", target.shutdown),
                                                      ("pending", target.pending)) if flag))
    replica = here.drbd.get(node)
    facts = view.facts.get(node)
    if replica is None:
        reason = (f"DRBD {config.drbd_resource} is not up on {node}" if facts and facts.drbd is not None
                  else f"DRBD on {node} cannot be asked" + (f": {facts.error}" if facts and facts.error else ""))
        checks.append(Check("drbd", False, reason))
    else:
        roles = view.mon.roles(config.drbd_primitive or "")
        promoted = roles.get(node) in ("Promoted", "Master") and replica.role == "Primary"
        ok = replica.connected and replica.up_to_date and promoted and not replica.suspended
        check("drbd", ok, f"DRBD {config.drbd_resource} on {node} is Connected, UpToDate and Promoted",
              f"DRBD {config.drbd_resource} on {node} is "
              + ", ".join(filter(None, (
                  None if replica.connected else "not connected ("
                  + ", ".join(f"{p} {s}" for p, s in replica.connections.items()) + ")",
                  None if replica.up_to_date else "/".join(replica.disks) or "without disk",
                  None if promoted else f"{replica.role} (Pacemaker: {roles.get(node, 'not running')})",
                  None if not replica.suspended else f"I/O suspended ({', '.join(replica.suspended)})"))))
    if probes.config_present is None:
        checks.append(Check("config", False, f"cannot look for {config.config} on {node}"
                             + (f": {probes.config_error}" if probes.config_error else "")))
    else:
        check("config", probes.config_present, f"{config.config} is on {node}",
              f"{config.config} is missing on {node} (`xenha provision` installs it)")
    memory = None
    if here.node and here.domains.get(here.node):
        memory = next((m for name, _state, m in here.domains[here.node] if name == config.domain), None)
    memory = memory or config.memory_mib
    if probes.free_memory_mib is None or memory is None:
        checks.append(Check("memory", False, f"cannot tell whether {node} has the memory for {vm} "
                                             f"(xl info on {node}: {'no answer' if probes.free_memory_mib is None else 'ok'}"
                                             f", {vm}'s memory: {'unknown' if memory is None else f'{memory} MiB'})"))
    else:
        check("memory", probes.free_memory_mib >= memory,
              f"{node} has {probes.free_memory_mib} MiB free, {vm} needs {memory} MiB",
              f"{node} has {probes.free_memory_mib} MiB free, {vm} needs {memory} MiB")
    if here.node and here.node != node:
        check("migration-address", probes.address_reachable,
              f"{probes.address} answers from {here.node} through `{config.migration_transport}`",
              f"{probes.address} does not answer from {here.node} through `{config.migration_transport}`"
              + (f": {probes.address_error}" if probes.address_error else ""))
    related = {vm, config.drbd_primitive, config.lv_clone and config.lv_clone.removesuffix("-clone")}
    failures = [f for f in view.mon.failures if f.resource in related]
    check("no-failures", not failures, f"no failed actions on {vm}",
          "failed actions pending: " + "; ".join(f"{f.resource} {f.operation} on {f.node}" for f in failures)
          + f" (fix the cause, then `pcs resource cleanup {vm}`)")
    moves = [c for c in view.cib.moves if c.rsc == vm]
    check("no-moves", not moves, f"no temporary move constraint on {vm}",
          "temporary constraints on it: " + ", ".join(c.id for c in moves)
          + f" (`crm_resource --clear -r {vm}` removes them)")
    return checks


@dataclass
class MigrateResult:
    vm: str
    source: str
    target: str
    seconds: float
    checks: list

    def to_json(self) -> dict:
        return {"vm": self.vm, "ok": True, "source": self.source, "target": self.target,
                "seconds": round(self.seconds, 2),
                "checks": [c.to_json() for c in self.checks]}


def iso_duration(seconds: int) -> str:
    return f"PT{int(seconds)}S"


def migrate(env: Environment, vm: str, node: str, timeout: float = 300.0, lifetime_s: int = DEFAULT_LIFETIME_S,
            dry_run: bool = False, progress=None) -> MigrateResult:
    """Check, move (cli-prefer with a lifetime), wait until it runs on `node` alone,
    clear the constraint. OperationError (code 3) when a check fails, (1) when the move
    does not end as asked, with the state and what to do."""
    say = progress or (lambda kind, **data: None)
    view = gather(env)
    known(view, vm, node)
    checks = preflight(view, vm, node, probe(env, view, vm, node))
    say("checks", checks=checks)
    failed = [c for c in checks if not c.ok]
    source = view.vm(vm).node or ""
    result = MigrateResult(vm, source, node, 0.0, checks)
    if failed:
        raise OperationError(f"not migrating {vm} to {node}: {failed[0].reason}"
                             + (f" (and {len(failed) - 1} more failed checks)" if len(failed) > 1 else ""), code=3)
    if dry_run:
        return result
    started = time.monotonic()
    moved = env.run(["crm_resource", "--move", "--resource", vm, "--node", node,
                     "--lifetime", iso_duration(lifetime_s)], 30.0)
    if not moved.ok:
        raise OperationError(f"crm_resource --move failed: {last_words(moved)}")
    say("moving", constraint=f"cli-prefer-{vm}", lifetime_s=lifetime_s)
    deadline = started + timeout
    last_state = None
    from xenha.operate.status import crm_mon

    while True:
        mon = crm_mon(env)
        state, nodes, failed_now = S.vm_state(mon, vm)
        if (state, nodes) != last_state:
            say("state", state=state, nodes=list(nodes), seconds=time.monotonic() - started)
            last_state = (state, nodes)
        if state == "running" and nodes == (node,):
            break
        if failed_now or time.monotonic() >= deadline:
            why = "failed" if failed_now else f"is {state} on {', '.join(nodes) or 'no node'} after {timeout:.0f} s"
            raise OperationError(
                f"{vm} {why}; the move constraint cli-prefer-{vm} stays until it expires in {lifetime_s} s: "
                f"see `xenha status`, fix the cause, `pcs resource cleanup {vm}`, then `crm_resource --clear -r {vm}`")
        time.sleep(POLL_S)
    result.seconds = time.monotonic() - started
    cleared = env.run(["crm_resource", "--clear", "--resource", vm], 30.0)
    if not cleared.ok:
        raise OperationError(f"{vm} runs on {node}, but clearing cli-prefer-{vm} failed: {last_words(cleared)} "
                             f"(it expires by itself in {lifetime_s} s; `crm_resource --clear -r {vm}`)")
    say("cleared", constraint=f"cli-prefer-{vm}")
    return result
