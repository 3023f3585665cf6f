"""ocf:xenha:lvm-volume — logical volumes of one volume group, active on this node.

Run as a clone on the replica nodes: each node activates its own host-local LV (the DRBD
backing volume) before DRBD attaches, and deactivates it after DRBD let go. For a VG
that is not host-local (shared storage), ownership is taken through the LVM system ID
or a tag, as resource-agents' LVM-activate does.

Cost model: the recurring monitor at depth 0 reads device-mapper's device nodes and
sysfs (no process, no LVM metadata scan, no disk scan); depth 10 reads the LVM metadata
(missing PVs → degraded 190, ownership still ours) and reads the first block of each LV.
Stop asks `dmsetup info` for open counts before deactivating.
"""

from xenha import names as grammar
from xenha.ocf import codes
from xenha.ocf.agent import Action, ResourceAgent, main as ocf_main
from xenha.ocf.codes import OcfError
from xenha.ocf.parameters import SELECT, STRING, Parameter
from xenha.tools import dmsetup

OWNERSHIP_NONE = "none"
OWNERSHIP_SYSTEM_ID = "system_id"
OWNERSHIP_TAG = "tag"
READ_BYTES = 4096

PARAMETERS = (
    Parameter("vg", STRING, "volume group",
              "Name of the volume group holding the logical volumes.",
              required=True, unique_group="lvm-volume"),
    Parameter("lvs", STRING, "logical volumes (default: all of the VG)",
              "Space-separated names of the logical volumes to activate, e.g. vm_shaolin. Empty: every "
              "logical volume of the group (listed at start; the monitor checks that list).",
              unique_group="lvm-volume"),
    Parameter("ownership", SELECT, "how the node owns the volume group",
              "none: a host-local VG (each node has its own, like DRBD's backing volumes): plain local "
              "activation. system_id: a shared VG handed over with the LVM system ID (the node takes "
              "the VG over on start). tag: a shared VG handed over with a tag and activation/volume_list "
              "(legacy HA-LVM). System ID and tag modes are for storage shared by several nodes; they cannot "
              "back a live-migrating VM.",
              default=OWNERSHIP_NONE, options=(OWNERSHIP_NONE, OWNERSHIP_SYSTEM_ID, OWNERSHIP_TAG)),
    Parameter("tag", STRING, "owner tag (ownership=tag)",
              "Tag that marks the VG as owned by the cluster in tag mode; activation is restricted to it.",
              default="pacemaker"),
    Parameter("activation_mode", SELECT, "activation with missing PVs",
              "complete: refuse to activate an LV with missing physical volumes (lvm's default). degraded: "
              "allow RAID/mirror LVs that can run without the missing PV. partial: activate whatever is "
              "there (missing areas return I/O errors). Passed to lvchange --activationmode.",
              default="complete", options=("complete", "degraded", "partial"), reloadable=True),
)

ACTIONS = (
    Action("start", 90),
    Action("stop", 90),
    Action("monitor", 30, interval=10, depth=0),
    Action("monitor", 90, interval=60, depth=10),
    Action("validate-all", 30),
    Action("reload-agent", 10),
    Action("meta-data", 5),
)


class LvmVolumeAgent(ResourceAgent):
    NAME = "lvm-volume"
    SHORTDESC = "LVM logical volumes activated on this node"
    LONGDESC = (
        "Activates logical volumes of one volume group before the resources that use them (e.g. "
        "the DRBD backing volume of a VM) and deactivates them afterwards. Start and stop verify "
        "the effect through device-mapper, so an activation filtered out by activation/volume_list "
        "is an error, not a silent success. Stop refuses (1, with the reason) to deactivate an LV "
        "that is still open, for instance by DRBD. The depth-0 monitor reads device-mapper's device "
        "nodes and sysfs only (no process, no LVM scan); the depth-10 monitor also reads the LVM metadata (missing physical volumes are reported "
        "as degraded, 190; ownership is checked again) and reads the first block of each LV. "
        "validate-all at depth 10 reports autoactivation outside the cluster as a risk for shared "
        "volume groups.")
    PARAMETERS = PARAMETERS
    ACTIONS = ACTIONS
    CHECK_LEVELS = (0, 10)

    def __init__(self, env, log, deadline):
        super().__init__(env, log, deadline)
        self.vg = self.params.vg or ""
        self.names = (self.params.lvs or "").replace(",", " ").split()
        self._lvm = None
        self._record = None
        self.device_mapper = dmsetup.Dmsetup(env=self.env.environ)

    # --- collaborators (created on first use: the depth-0 monitor needs neither) --------
    @property
    def lvm(self):
        if self._lvm is None:
            from xenha.tools.lvm import Lvm
            self._lvm = Lvm(env=self.env.environ)
        return self._lvm

    @property
    def record(self):
        if self._record is None:
            from xenha.ocf.state import ResourceRecord
            self._record = ResourceRecord(self.env.rsctmp, self.NAME, self.env.instance)
        return self._record

    # --- validation ------------------------------------------------------------------
    def parameter_problems(self) -> list[OcfError]:
        problems = self.name_problems()
        if self.params.ownership == OWNERSHIP_TAG:
            from xenha.tools.lvm import tag_problem

            why = tag_problem(self.params.tag)
            if why:
                problems.append(self.invalid("tag", why))
        return problems

    def name_problems(self) -> list[OcfError]:
        """VG and LV names LVM refuses (or keeps for itself): no such volume can exist."""
        problems = []
        why = self.vg and grammar.check_vg_name(self.vg)
        if why:
            problems.append(self.invalid("vg", why))
        for name in self.names:
            why = grammar.check_lv_name(name)
            if why:
                problems.append(self.invalid("lvs", f"{name!r} {why}"))
                break
        return problems

    def check_environment(self) -> None:
        action = self.env.action
        if not self.vg:
            raise OcfError(codes.ERR_CONFIGURED, "parameter vg is not set")
        if action == "stop":
            # names LVM refuses never reach lvm (stop_when_invalid looks at device-mapper),
            # and stop needs the tools only when something is active (action_stop)
            for problem in self.name_problems():
                raise problem
            return
        if action in ("validate-all", "reload-agent", "monitor") and self.check_level < 10:
            return   # the depth-0 monitor reads device-mapper's nodes: no tool needed
        self.require(self.device_mapper, self.lvm)

    def stop_when_invalid(self, problem: OcfError) -> int:
        if not self.vg or grammar.check_vg_name(self.vg):
            self.log.info(f"{problem.reason}: no such volume group can exist, this resource never activated "
                          "anything; stop succeeds")
            return codes.SUCCESS
        active, _inactive, suspended = self.activation_state()
        if not active and not suspended:
            self.log.info(f"{problem.reason}; device-mapper shows no LV of {self.vg} active: stop succeeds")
            return codes.SUCCESS
        self.log.exit_reason(f"cannot deactivate {' '.join(active + suspended)}: {problem.reason}")
        return codes.ERR_GENERIC

    # --- what device-mapper says -------------------------------------------------------
    def expected_names(self) -> list[str] | None:
        """The LVs this resource covers; None when "all of the VG" and not yet listed."""
        if self.names:
            return self.names
        listed = self.record.read().get("lvs")
        return listed.split() if listed else None

    def open_counts(self) -> dict:
        """{lv name: MappedDevice} of this VG's active LVs, with open counts (dmsetup)."""
        try:
            devices = self.device_mapper.devices_of_vg(self.vg, self.deadline.timeout())
        except dmsetup.DmError as error:
            raise OcfError(codes.ERR_GENERIC, f"cannot ask device-mapper: {error}") from None
        prefix = self.vg.replace("-", "--") + "-"
        return {name[len(prefix):].replace("--", "-"): device for name, device in devices.items()
                if name.startswith(prefix)}

    def activation_state(self):
        """(active, inactive, suspended) LV names of this resource, from device-mapper's
        device nodes and sysfs (no process: see tools/dmsetup.py)."""
        wanted = self.expected_names()
        if wanted is None:  # whole VG, never started here: whatever is active counts
            wanted = self.device_mapper.names_of_vg(self.vg)
        states = {name: self.device_mapper.mapped(dmsetup.dm_name(self.vg, name)) for name in wanted}
        active = [name for name, state in states.items() if state.active and not state.suspended]
        inactive = [name for name, state in states.items() if not state.active]
        suspended = [name for name, state in states.items() if state.active and state.suspended]
        return active, inactive, suspended

    # --- actions ---------------------------------------------------------------------
    def action_monitor(self) -> int:
        active, inactive, suspended = self.activation_state()
        if not active and not suspended:
            return codes.NOT_RUNNING
        if inactive:
            raise OcfError(codes.ERR_GENERIC, f"only some LVs of {self.vg} are active; inactive: {' '.join(inactive)}")
        if suspended:
            if not self.deadline.sleep(1.0):
                raise OcfError(codes.ERR_GENERIC, f"LVs suspended: {' '.join(suspended)}")
            active, inactive, suspended = self.activation_state()
            if suspended or inactive:
                raise OcfError(codes.ERR_GENERIC, f"LVs of {self.vg} stay suspended: {' '.join(suspended)}")
        if self.check_level >= 10:
            return self.deep_check(active)
        return codes.SUCCESS

    def deep_check(self, active) -> int:
        from xenha.tools.lvm import LvmError

        try:
            group = self.lvm.volume_group(self.vg, self.deadline.timeout())
            volumes = self.lvm.logical_volumes(self.vg, active, self.deadline.timeout())
        except LvmError as error:
            raise OcfError(codes.ERR_GENERIC, f"cannot read LVM metadata of {self.vg}: {error}") from None
        if group is None:
            raise OcfError(codes.ERR_GENERIC, f"volume group {self.vg} is not visible to LVM any more")
        self.check_still_owned(group)
        for volume in volumes:
            self.read_first_block(volume.path)
        partial = [v.name for v in volumes if v.partial]
        if partial or group.partial:
            self.log.exit_reason(f"{self.vg} is missing {group.missing_pvs} PV(s); degraded LVs: "
                                 f"{' '.join(partial) or 'none active'}")
            return codes.DEGRADED
        return codes.SUCCESS

    def check_still_owned(self, group) -> None:
        mode = self.params.ownership
        if mode == OWNERSHIP_SYSTEM_ID:
            mine = self.local_system_id()
            if group.systemid != mine:
                raise OcfError(codes.ERR_GENERIC,
                               f"{self.vg} is owned by system ID {group.systemid!r}, not by this node ({mine!r})")
        elif mode == OWNERSHIP_TAG and self.params.tag not in group.tags:
            raise OcfError(codes.ERR_GENERIC, f"{self.vg} lost its owner tag {self.params.tag}")

    def read_first_block(self, path: str) -> None:
        from xenha.tools.binaries import ToolNotFound
        from xenha.tools.dd import Dd, ReadError

        try:
            Dd(env=self.env.environ).read_first_block(path, READ_BYTES, self.deadline.timeout())
        except ReadError as error:
            raise OcfError(codes.ERR_GENERIC, f"cannot read {path}: {error}") from None
        except ToolNotFound as missing:
            raise OcfError(codes.ERR_GENERIC, f"cannot read {path}: {missing}") from None

    def action_start(self) -> int:
        group = self.visible_group()
        if self.params.ownership == OWNERSHIP_SYSTEM_ID:
            group = self.take_over_system_id(group)
        names = self.names or self.all_lv_names()
        self.check_lvs_exist(names)
        if not self.record.write({"lvs": " ".join(names)}):
            self.log.warning(f"cannot write {self.record.path}")
        active, inactive, _suspended = self.activation_state()
        if not inactive:
            self.log.info(f"{self.vg}: {' '.join(active)} already active")
            return codes.SUCCESS
        only_tagged = None
        if self.params.ownership == OWNERSHIP_TAG:
            self.add_owner_tag()
            only_tagged = self.params.tag
        self.run_lvm("activate", self.lvm.activate, self.vg, inactive, self.params.activation_mode,
                     only_tagged=only_tagged)
        active, inactive, _suspended = self.activation_state()
        if inactive:
            raise OcfError(codes.ERR_GENERIC,
                           f"lvchange -ay succeeded but {' '.join(inactive)} stayed inactive "
                           "(filtered by activation/volume_list?)")
        self.log.info(f"{self.vg}: activated {' '.join(active)}")
        return codes.SUCCESS

    def action_stop(self) -> int:
        active, _inactive, suspended = self.activation_state()
        if active or suspended:
            try:
                self.require(self.device_mapper, self.lvm)
            except OcfError as missing:   # mapped LVs: device-mapper is here, the state is known
                raise OcfError(codes.ERR_GENERIC,
                               f"cannot deactivate {' '.join(active + suspended)}: {missing.reason}") from None
        counts = self.open_counts() if active or suspended else {}
        busy = [f"{name} (open {counts[name].open_count}x)" for name in active + suspended
                if name in counts and counts[name].open_count > 0]
        if busy:
            raise OcfError(codes.ERR_GENERIC,
                           f"not deactivating {self.vg}: LV still open, e.g. DRBD attached: {', '.join(busy)}")
        if active or suspended:
            self.run_lvm("deactivate", self.lvm.deactivate, self.vg, active + suspended)
            active, _inactive, suspended = self.activation_state()
            if active or suspended:
                raise OcfError(codes.ERR_GENERIC, f"{' '.join(active + suspended)} still active after lvchange -an")
        if self.params.ownership == OWNERSHIP_TAG:
            from xenha.tools.lvm import tag_problem

            if not self.lvm.lvm.installed():
                self.log.warning(f"lvm is not installed: the owner tag {self.params.tag} stays on {self.vg}")
            elif tag_problem(self.params.tag):
                self.log.warning(f"tag {self.params.tag!r} {tag_problem(self.params.tag)}: not removing it")
            else:
                self.remove_owner_tag()
        self.record.remove()
        self.log.info(f"{self.vg}: inactive")
        return codes.SUCCESS

    # --- helpers of start/stop/validate ---------------------------------------------------
    def run_lvm(self, what: str, change, *args, **options) -> None:
        """One change through the LVM driver; 1 with lvm's words when it fails."""
        from xenha.tools.lvm import LvmError

        try:
            change(*args, timeout=self.deadline.timeout(reserve=2.0), **options)
        except LvmError as error:
            raise OcfError(codes.ERR_GENERIC, f"cannot {what} {self.vg}: {error}") from None

    def visible_group(self):
        """The VG as this node sees it (foreign VGs only in system ID mode); 5 if absent."""
        from xenha.tools.lvm import LvmError

        foreign = self.params.ownership == OWNERSHIP_SYSTEM_ID
        try:
            group = self.lvm.volume_group(self.vg, self.deadline.timeout(), foreign=foreign)
        except LvmError as error:
            raise OcfError(codes.ERR_GENERIC, f"cannot read volume group {self.vg}: {error}") from None
        if group is None:
            raise OcfError(codes.ERR_INSTALLED, f"volume group {self.vg} does not exist on this node")
        if group.exported:
            raise OcfError(codes.ERR_INSTALLED, f"volume group {self.vg} is exported (vgimport it first)")
        return group

    def all_lv_names(self) -> list[str]:
        from xenha.tools.lvm import LvmError

        try:
            volumes = self.lvm.logical_volumes(self.vg, [], self.deadline.timeout(),
                                               foreign=self.params.ownership == OWNERSHIP_SYSTEM_ID)
        except LvmError as error:
            raise OcfError(codes.ERR_GENERIC, f"cannot list LVs of {self.vg}: {error}") from None
        names = [v.name for v in volumes if not v.is_snapshot]
        if not names:
            raise OcfError(codes.ERR_CONFIGURED, f"volume group {self.vg} has no logical volumes")
        return names

    def check_lvs_exist(self, names) -> list:
        from xenha.tools.lvm import LvmError

        try:
            volumes = self.lvm.logical_volumes(self.vg, names, self.deadline.timeout(),
                                               foreign=self.params.ownership == OWNERSHIP_SYSTEM_ID)
        except LvmError as error:
            raise OcfError(codes.ERR_GENERIC, f"cannot read LVs of {self.vg}: {error}") from None
        missing = sorted(set(names) - {v.name for v in volumes})
        if missing:
            raise OcfError(codes.ERR_INSTALLED, f"logical volume(s) {' '.join(missing)} not found in {self.vg}")
        return volumes

    def local_system_id(self) -> str:
        from xenha.tools.lvm import LvmError

        try:
            return self.lvm.local_system_id(self.deadline.timeout())
        except LvmError as error:
            raise OcfError(codes.ERR_GENERIC, f"cannot read the local LVM system ID: {error}") from None

    def take_over_system_id(self, group):
        mine = self.local_system_id()
        if not mine:
            raise OcfError(codes.ERR_ARGS, "ownership=system_id needs a local LVM system ID (global/system_id_source)")
        if group.systemid == mine:
            return group
        previous = group.systemid
        self.log.info(f"taking {self.vg} over from system ID {previous!r}")
        self.run_lvm("take over", self.lvm.set_system_id, self.vg, mine, previous=previous)
        return self.visible_group()

    def add_owner_tag(self) -> None:
        self.run_lvm("tag", self.lvm.add_tag, self.vg, self.params.tag)

    def remove_owner_tag(self) -> None:
        self.run_lvm("untag", self.lvm.remove_tag, self.vg, self.params.tag)

    def action_validate_all(self) -> int:
        if self.check_level < 10:
            return codes.SUCCESS
        group = self.visible_group()
        volumes = self.check_lvs_exist(self.names or self.all_lv_names())
        if self.params.ownership == OWNERSHIP_SYSTEM_ID and not self.local_system_id():
            raise OcfError(codes.ERR_ARGS, "ownership=system_id needs a local LVM system ID on this node")
        if self.params.ownership != OWNERSHIP_NONE:
            risky = ([self.vg] if group.autoactivation else []) + [v.full_name for v in volumes if v.autoactivation]
            if risky:
                self.log.warning(f"risk: autoactivation is enabled for {', '.join(risky)}: the host may activate "
                                 f"them at boot outside the cluster (vgchange --setautoactivation n {self.vg})")
        self.log.info(f"{self.vg}: {len(volumes)} LV(s), ownership {self.params.ownership}")
        return codes.SUCCESS

    def action_reload_agent(self) -> int:
        return codes.SUCCESS


def main() -> int:
    return ocf_main(LvmVolumeAgent)
