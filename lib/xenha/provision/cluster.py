"""The cluster side of provisioning: a rendered description onto its nodes.

    provisioner = Provisioner(transport, rendering.description, rendering.slots, rendering.files)
    report = provisioner.run()            # every step's outcome; ProvisionError when one fails

For every VM, on each replica (in parallel across nodes): the DRBD resource file and the
xl config where the description says (drbd_config_dir, xen_config_dir), the LV, DRBD
meta-data, `drbdadm up` (node.py says how each step looks first); then, once the
replicas are connected, the initial sync of each new resource from one replica (its
preferred node when that is a replica) and a wait until every disk is UpToDate, with
DRBD's own progress; last, the rendered pcs script through the real `pcs` on one node
(in one CIB transaction; it creates only what is missing).

A transport runs a command on a node: `run(node, argv, timeout=..., input=...)` returning
an object with `returncode`, `stdout`, `stderr` and `timed_out` (SshTransport: root ssh
to each node; the lab passes its own backend, which has that method).
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from dataclasses import dataclass, field

from xenha.render import drbd as drbd_render
from xenha.render import xl as xl_render

NODE_COMMAND = ("xenha", "provision-node")
STEP_TIMEOUT = 300.0
STATE_TIMEOUT = 60.0


class ProvisionError(Exception):
    """Provisioning stopped: the message is one line saying where and why."""


@dataclass(frozen=True)
class Replica:
    """One VM's storage and configuration on one of its nodes."""
    vm: str
    node: str
    resource: str
    minor: int
    vg: str
    lv: str
    size: int
    disk: str                  # the DRBD backing device, /dev/VG/LV
    files: tuple               # ((path on the node, text), ...)


@dataclass
class Report:
    results: list = field(default_factory=list)      # (node, step result dict), in order
    timings: dict = field(default_factory=dict)      # phase -> seconds

    def changed(self) -> bool:
        return any(result["outcome"] == "created" for _node, result in self.results)


def replicas(description, slots: dict, files: dict, vms=None) -> list[Replica]:
    """What each replica node needs for each VM (all VMs, or those named)."""
    defaults = description.defaults
    chosen = [vm for vm in description.vms if vms is None or vm.name in vms]
    out = []
    for vm in chosen:
        slot = slots[vm.name]
        res_file = drbd_render.file_name(slot)
        xl_file = xl_render.file_name(vm)
        texts = ((f"{defaults.drbd_config_dir}/{res_file}", files[f"drbd.d/{res_file}"]),
                 (f"{defaults.xen_config_dir}/{xl_file}", files[f"xen/{xl_file}"]))
        for node in vm.replicas:
            out.append(Replica(vm.name, node, slot.resource, slot.minor, defaults.volume_group,
                               description.lv_name(vm), vm.disk_size,
                               drbd_render.backing_disk(description, vm), texts))
    return out


def setup_steps(replica: Replica) -> list[dict]:
    # an xl config xenha rendered may be replaced by a newer rendering (it takes effect
    # at the domain's next start); a DRBD resource file never is (drbdadm would run
    # with a configuration the kernel does not have)
    steps = [{"op": "file", "path": path, "text": text, **({"replace_rendered": True} if path.endswith(".cfg") else {})}
             for path, text in replica.files]
    steps += [{"op": "volume", "vg": replica.vg, "lv": replica.lv, "size": replica.size},
              {"op": "drbd-metadata", "resource": replica.resource},
              {"op": "drbd-up", "resource": replica.resource, "minor": replica.minor, "disk": replica.disk}]
    return steps


class SshTransport:
    """Root ssh to each node (its address: the node name unless given), as `xl migrate`
    uses it: never prompting, bounded."""

    def __init__(self, addresses: dict | None = None, ssh: str = "ssh -o BatchMode=yes -o ConnectTimeout=10"):
        self.addresses = addresses or {}
        self.ssh = shlex.split(ssh)

    def run(self, node: str, argv, timeout: float = 60.0, input: str | None = None):
        from xenha.tools import runner

        address = self.addresses.get(node, node)
        command = [*self.ssh, f"root@{address}", "--", shlex.join(str(a) for a in argv)]
        result = runner.run(command, timeout, env=None, stdin=input.encode() if input is not None else None)
        return result


class Provisioner:
    def __init__(self, transport, description, slots: dict, files: dict, vms=None, progress=None,
                 node_command=NODE_COMMAND):
        self.transport = transport
        self.description = description
        self.files = files
        self.replicas = replicas(description, slots, files, vms)
        self.progress = progress or (lambda kind, **data: None)
        self.node_command = list(node_command)
        self.report = Report()
        self._lock = threading.Lock()

    # --- talking to a node's side ---------------------------------------------------------------------------------
    def on_node(self, node: str, steps: list[dict], timeout: float = STEP_TIMEOUT) -> list[dict]:
        """Run steps on a node; their results (ProvisionError on a refusal or failure)."""
        request = json.dumps({"timeout": timeout, "steps": steps})
        result = self.transport.run(node, self.node_command, timeout=timeout + 30, input=request)
        if result.timed_out:
            raise ProvisionError(f"{node}: `{' '.join(self.node_command)}` did not answer in {timeout + 30:.0f} s")
        try:
            answer = json.loads(result.stdout.strip().splitlines()[-1])
            results = answer["results"]
        except (ValueError, IndexError, KeyError, TypeError):
            said = (result.stderr.strip() or result.stdout.strip() or f"exit {result.returncode}").splitlines()
            raise ProvisionError(f"{node}: `{' '.join(self.node_command)}` failed: {said[-1] if said else ''}") \
                from None
        for entry in results:
            if entry["op"] not in ("drbd-state", "drbd-wait-sync"):
                with self._lock:
                    self.report.results.append((node, entry))
                self.progress("step", node=node, result=entry)
        bad = [entry for entry in results if entry["outcome"] in ("refused", "failed")]
        if bad:
            raise ProvisionError(f"{node}: {bad[0]['op']} {bad[0]['target']}: {bad[0]['outcome']}: {bad[0]['detail']}")
        if answer.get("error") or not answer.get("ok"):
            raise ProvisionError(f"{node}: {answer.get('error') or 'the node refused the request'}")
        return results

    def _parallel(self, work: dict) -> None:
        """work: node -> callable; run them at once, raise the first failure."""
        errors = {}

        def run(node, job):
            try:
                job()
            except ProvisionError as error:
                errors[node] = error
            except Exception as error:  # noqa: BLE001 - reported as this node's failure
                errors[node] = ProvisionError(f"{node}: {type(error).__name__}: {error}")
        threads = [threading.Thread(target=run, args=item, name=f"provision {item[0]}") for item in work.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[sorted(errors)[0]]

    # --- the phases ---------------------------------------------------------------------------------------------
    def run(self, sync_timeout: float = 600.0, pacemaker: bool = True, skip_initial_sync: bool = False) -> Report:
        """Storage on every replica, the initial syncs (skipped with `skip_initial_sync`:
        new-current-uuid --clear-bitmap, for new empty volumes), then Pacemaker."""
        started = time.monotonic()
        by_node: dict[str, list[Replica]] = {}
        for replica in self.replicas:
            by_node.setdefault(replica.node, []).append(replica)
        self.progress("phase", name="storage", nodes=sorted(by_node))
        self._parallel({node: (lambda node=node, mine=mine: self.on_node(
            node, [step for replica in mine for step in setup_steps(replica)])) for node, mine in by_node.items()})
        self.report.timings["storage"] = time.monotonic() - started
        mark = time.monotonic()
        self.progress("phase", name="initial sync")
        self.initial_sync(by_node, sync_timeout, skip=skip_initial_sync)
        self.report.timings["sync"] = time.monotonic() - mark
        if pacemaker:
            mark = time.monotonic()
            self.progress("phase", name="pacemaker")
            self.apply_pacemaker()
            self.report.timings["pacemaker"] = time.monotonic() - mark
        self.report.timings["total"] = time.monotonic() - started
        return self.report

    def states(self, by_node: dict, wait: float = 0.0) -> dict:
        """{(resource, node): state dict} of every replica, one call per node."""
        found = {}

        def ask(node, mine):
            steps = [{"op": "drbd-wait-sync" if wait else "drbd-state", "resource": r.resource, "wait": wait}
                     for r in mine]
            for replica, entry in zip(mine, self.on_node(node, steps, STATE_TIMEOUT)):
                found[(replica.resource, node)] = entry.get("state", {})
        self._parallel({node: (lambda node=node, mine=mine: ask(node, mine)) for node, mine in by_node.items()})
        return found

    def source_of(self, resource: str) -> str:
        """The replica the initial sync starts from: the VM's preferred node if it is a
        replica, else its first replica."""
        mine = [r for r in self.replicas if r.resource == resource]
        vm = next(v for v in self.description.vms if v.name == mine[0].vm)
        return vm.preferred_node if vm.preferred_node in vm.replicas else vm.replicas[0]

    def initial_sync(self, by_node: dict, timeout: float, skip: bool = False) -> None:
        deadline = time.monotonic() + timeout
        resources = sorted({r.resource for r in self.replicas})
        started: set[str] = set()
        while True:
            states = self.states(by_node, wait=0.5 if started else 0.0)
            pending = []
            for resource in resources:
                views = {node: state for (res, node), state in states.items() if res == resource}
                disks = [d for state in views.values() for d in state.get("disks", [])]
                connected = all(state.get("connections") and all(c == "Connected" for c in state["connections"].values())
                                for state in views.values())
                if disks and all(d == "UpToDate" for d in disks) and connected:
                    continue
                pending.append(resource)
                done = [state.get("done") for state in views.values() if state.get("done") is not None]
                self.progress("sync", resource=resource, done=min(done) if done else None,
                              disks={node: state.get("disks") for node, state in views.items()},
                              connected=connected)
                if resource not in started and connected and all(d == "Inconsistent" for d in disks):
                    source = self.source_of(resource)
                    self.on_node(source, [{"op": "drbd-initial-sync", "resource": resource, "skip": skip}])
                    started.add(resource)
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise ProvisionError(f"DRBD resources {', '.join(pending)} not connected and UpToDate on every "
                                     f"replica after {timeout:.0f} s")
            if not started:
                time.sleep(0.3)

    def apply_pacemaker(self, node: str | None = None) -> None:
        """The rendered pcs script on a node, pushed in one CIB transaction (it creates
        only what is missing)."""
        node = node or self.description.nodes[0].name
        self.on_node(node, [{"op": "pcs-script", "text": self.files["pacemaker/pcs-commands.sh"]}])
