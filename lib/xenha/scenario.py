"""Scheduler scenarios: a rendered configuration, a sequence of cluster events, and what
Pacemaker's own scheduler (crm_simulate) decides — compared with golden summaries and
checked against invariants.

A scenario folder holds `scenario.toml` (what it proves, which example description, the
steps, checks) and `expected.summary` (the golden crm_simulate text of the last step).

Steps (strings):
    up NODE...            nodes join (crm_simulate -u)
    settle                run transitions until idle, keeping DRBD promotion scores as the
                          agent writes them (UpToDate and connected: 10000)
    standby NODE          node drain (standby attribute, forever)
    unstandby NODE
    move VM NODE          crm_resource --move (a cli-prefer constraint)
    fail NODE             the node dies (crm_simulate --node-fail)
    next                  one more transition
Any step that runs a transition accepts trailing crm_simulate options, e.g.
`move shaolin mk2 --op-fail shaolin_migrate_to_0@mk1=1` (that migrate_to fails).
    outdated VM NODE      DRBD on NODE is not UpToDate: no promotion score there, and the
                          fence-peer handler's constraint forbids promoting it
The last step is the one compared with the golden file.
"""

import os
import shutil
import tempfile
import tomllib
from dataclasses import dataclass

from xenha.cluster import allocation
from xenha.cluster.description import Description
from xenha.render import pacemaker as pcmk
from xenha.tools import pacemaker as tools

UP_TO_DATE_SCORE = "10000"


class Simulation:
    """A CIB file and the events applied to it, offline."""

    def __init__(self, description: Description, workdir: str | None = None, slots: dict | None = None):
        self.description = description
        if slots is None:
            existing = allocation.read(allocation.allocation_path(description.path))
            slots, _added = allocation.allocate(description, existing)
        self.config = pcmk.build(description, slots)
        self.workdir = workdir or tempfile.mkdtemp(prefix="xenha-sim-")
        self.step_number = 0
        self.nodes = [n.name for n in description.nodes]
        self.cib = self._path("cib.xml")
        with open(self.cib, "w", encoding="utf-8") as handle:
            handle.write(pcmk.cib_xml(self.config, self.nodes))
        self.outdated = set()          # (drbd primitive, node)
        self.transitions = []

    def _path(self, name: str) -> str:
        return os.path.join(self.workdir, name)

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- one crm_simulate run -----------------------------------------------------------
    def transition(self, *extra) -> tools.Transition:
        self.step_number += 1
        out = self._path(f"cib-{self.step_number}.xml")
        graph = self._path(f"graph-{self.step_number}.xml")
        result = tools.simulate(self.cib, out, graph, extra)
        self.cib = out
        self.transitions.append(result)
        self.keep_promotion_scores()
        return result

    def drbd_primitives(self):
        return [item.primitive.id for item in self.config.resources
                if isinstance(item, pcmk.Clone) and item.promotable]

    def keep_promotion_scores(self) -> None:
        """Write master-<drbd> where an instance runs, as the agent would after start."""
        placement = tools.where(self.cib)
        for primitive in self.drbd_primitives():
            running = {node for node, _role in placement.get(primitive, [])}
            for node in self.nodes:
                wanted = UP_TO_DATE_SCORE if node in running and (primitive, node) not in self.outdated else None
                try:
                    tools.set_node_attribute(self.cib, node, f"master-{primitive}", wanted)
                except tools.PacemakerError:
                    if wanted is not None:
                        raise  # deleting an absent attribute is fine

    # --- steps --------------------------------------------------------------------------
    # verb -> what its arguments are ("node...": one or more nodes)
    STEP_ARGUMENTS = {"up": ("node...",), "settle": (), "next": (), "standby": ("node",), "unstandby": ("node",),
                      "move": ("vm", "node"), "fail": ("node",), "outdated": ("vm", "node")}

    def check_step(self, text: str, verb: str, args: list) -> None:
        """Refuse a step that names a node or VM the description does not have (or has
        the wrong number of arguments) before crm_simulate sees it."""
        expected = self.STEP_ARGUMENTS.get(verb)
        if expected is None:
            raise ValueError(f"unknown scenario step {text!r}")
        usage = " ".join([verb] + [kind.upper() for kind in expected])
        if expected == ("node...",):
            if not args:
                raise ValueError(f"step {text!r}: usage: {verb} NODE...")
            kinds = ["node"] * len(args)
        else:
            if len(args) != len(expected):
                raise ValueError(f"step {text!r}: usage: {usage}")
            kinds = list(expected)
        vms = [vm.name for vm in self.description.vms]
        for kind, arg in zip(kinds, args):
            known = self.nodes if kind == "node" else vms
            if arg not in known:
                raise ValueError(f"step {text!r}: unknown {'node' if kind == 'node' else 'VM'} {arg!r} "
                                 f"({'nodes' if kind == 'node' else 'VMs'}: {', '.join(known) or 'none'})")

    def step(self, text: str) -> tools.Transition | None:
        words = text.split()
        if not words:
            raise ValueError("empty scenario step")
        # Trailing crm_simulate options (e.g. --op-fail SPEC) apply to this step's transition.
        cut = next((i for i, w in enumerate(words) if w.startswith("--")), len(words))
        verb, args, options = words[0], words[1:cut], words[cut:]
        self.check_step(text, verb, args)
        if verb == "up":
            return self.transition(*[flag for node in args for flag in ("-u", node)], *options)
        if verb == "settle":
            return self.settle()
        if verb == "next":
            return self.transition(*options)
        if verb in ("standby", "unstandby"):
            tools.set_node_attribute(self.cib, args[0], "standby", "on" if verb == "standby" else "off", "forever")
            return self.transition(*options)
        if verb == "move":
            tools.move(self.cib, args[0], args[1])
            return self.transition(*options)
        if verb == "fail":
            return self.transition("--node-fail", args[0], *options)
        if verb == "outdated":
            self.make_outdated(args[0], args[1])
            return None
        raise ValueError(f"unknown scenario step {text!r}")

    def settle(self, rounds: int = 8) -> tools.Transition:
        last = None
        for _ in range(rounds):
            last = self.transition()
            if last.idle:
                return last
        raise RuntimeError(f"the cluster did not settle within {rounds} transitions")

    def make_outdated(self, vm: str, node: str) -> None:
        primitive = f"drbd_{vm}"
        self.outdated.add((primitive, node))
        tools.set_node_attribute(self.cib, node, f"master-{primitive}", None)
        # What drbd-utils' crm-fence-peer.9.sh places: promote only where the data is good.
        good = [n for n in self.nodes if n != node]
        rule = "".join(f'<expression attribute="#uname" operation="ne" value="{n}" '
                       f'id="drbd-fence-by-handler-{vm}-expr-{n}"/>' for n in good)
        constraint = (f'<rsc_location rsc="{primitive}-clone" id="drbd-fence-by-handler-{vm}-{primitive}-clone">'
                      f'<rule role="Promoted" score="-INFINITY" id="drbd-fence-by-handler-{vm}-rule">{rule}</rule>'
                      "</rsc_location>")
        tools.run(["cibadmin", "--create", "-o", "constraints", "-X", constraint], cib_path=self.cib)

    # --- facts for checks ---------------------------------------------------------------
    def placement(self) -> dict:
        return tools.where(self.cib)


@dataclass
class Scenario:
    name: str
    folder: str
    proves: str
    description_file: str
    steps: list
    checks: dict

    @classmethod
    def load(cls, folder: str, examples_dir: str) -> "Scenario":
        with open(os.path.join(folder, "scenario.toml"), "rb") as handle:
            data = tomllib.load(handle)
        return cls(os.path.basename(folder), folder, data["proves"],
                   os.path.join(examples_dir, data["description"] + ".toml"), list(data["steps"]),
                   data.get("checks", {}))

    @property
    def golden_path(self) -> str:
        return os.path.join(self.folder, "expected.summary")

    def run(self, description: Description) -> tuple[Simulation, tools.Transition]:
        simulation = Simulation(description)
        last = None
        for text in self.steps:
            result = simulation.step(text)
            if result is not None:
                last = result
        return simulation, last
