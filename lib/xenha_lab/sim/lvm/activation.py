"""The activation engine: what real lvm2 would have done with device-mapper after the
real command (run with activation disabled) validated a request — lvm.conf's volume
lists, partial LVs, exclusive/shared modes, open-count checks with lvm's retries,
snapshots activating with their origin, deferred merges completing — and keeping the
node's mapped devices in line with metadata changes (renames, removals, resizes)."""

from __future__ import annotations

import time

from xenha_lab.sim import holders as holders_registry
from xenha_lab.sim.lvm import devmapper as dm
from xenha_lab.sim.lvm import metadata, snapshot
from xenha_lab.sim.lvm import state as st
from xenha_lab.sim.lvm.cmdline import Output
from xenha_lab.sim.lvm.mapping import SimRefusal, create_lv_device, rename_device, resize_device
from xenha_lab.sim.lvm.runner import config_values, report_json, vg_metadata

OPEN_COUNT_CHECK_RETRIES = 25          # lib/activate/activate.c
OPEN_COUNT_CHECK_USLEEP_DELAY = 0.2


def as_list(value):
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def passes_volume_list(items, vg: metadata.VG, lv: metadata.LV) -> bool:
    """lvm.conf activation/volume_list semantics: "vg", "vg/lv", "@tag" (LV or VG
    tag); undefined passes everything, an empty list nothing."""
    if items is None:
        return True
    for item in items:
        item = item.strip()
        if not item:
            continue
        if item.startswith("@"):
            tag = item[1:]
            if tag == "*":
                continue          # host tags are not simulated
            if tag in lv.tags or tag in vg.tags:
                return True
            continue
        if "/" in item:
            vg_name, _, lv_name = item.partition("/")
            if vg_name == vg.name and lv_name == lv.name:
                return True
            continue
        if item == vg.name:
            return True
    return False


class Activator:
    """Applies activation changes on this node after the real command validated them."""

    def __init__(self, out: Output, user_config=None, activation_mode: str = "complete",
                 ignore_skip: bool = False, test: bool = False):
        self.out = out
        self.user_config = user_config
        self.mode_partial = activation_mode == "partial"
        self.ignore_skip = ignore_skip
        self.test = test
        self.state = st.NodeState()
        self._config = None
        self._vgs: dict[str, metadata.VG | None] = {}
        self.failed = False

    @property
    def config(self):
        if self._config is None:
            self._config = config_values(self.user_config)
        return self._config

    def vg(self, name: str, refresh: bool = False):
        if refresh or name not in self._vgs:
            self._vgs[name] = vg_metadata(name, self.user_config)
        return self._vgs[name]

    def fail(self, text: str):
        self.out.error(text)
        self.failed = True

    # targets ---------------------------------------------------------------------------
    def resolve(self, positional, select=None):
        """[(vg name, lv name)] the real lvs resolves from the command's arguments."""
        args = ["-a", "-o", "vg_name,lv_name"]
        if select:
            args += ["--select", select]
        rows, _ = report_json("lvs", args + list(positional), self.user_config)
        return [(r.get("vg_name", ""), r.get("lv_name", "")) for r in rows]

    # activation ------------------------------------------------------------------------
    def activate(self, vg_name: str, lv_name: str, mode: str) -> bool:
        vg = self.vg(vg_name)
        if vg is None or lv_name not in vg.lvs:
            return True
        lv = vg.lvs[lv_name]
        _, snap_seg = vg.cow_segment(lv.name)
        if snap_seg is not None:                 # a snapshot activates with its origin
            lv = vg.lvs.get(snap_seg.origin, lv)
        elif not lv.visible:
            return True
        if self.state.by_lv_uuid(lv.id):
            return True
        if not self.ignore_skip and ("ACTIVATION_SKIP" in lv.status or "ACTIVATION_SKIP" in lv.flags):
            return True
        cfg = self.config
        if mode == "ay":
            if "NOAUTOACTIVATE" in vg.flags or "NOAUTOACTIVATE" in lv.flags:
                return True
            if not passes_volume_list(as_list(cfg.get("activation/auto_activation_volume_list")), vg, lv):
                return True
        if not passes_volume_list(as_list(cfg.get("activation/volume_list")), vg, lv):
            return True                          # silently (log_verbose in lvm2)
        involved = [lv] + [vg.lvs[s.cow_store or s.merging_store] for _, s in vg.snapshots_of(lv.name)
                           if (s.cow_store or s.merging_store) in vg.lvs]
        if any(vg.is_partial(x) for x in involved):
            if not self.mode_partial:
                self.fail("Refusing activation of partial LV %s/%s.  Use '--activationmode partial' "
                          "to override." % (vg.name, lv.name))
                return False
            self.fail("xenha-sim: cannot map the missing parts of %s/%s without device-mapper "
                      "(partial activation is not simulated)." % (vg.name, lv.name))
            return False
        if self.test:
            return True
        read_only = (not lv.writable) or passes_volume_list(
            as_list(cfg.get("activation/read_only_volume_list")) or [], vg, lv)
        try:
            with self.state:
                merging = [(s_lv, s) for s_lv, s in vg.snapshots_of(lv.name) if s.merging_store]
                if merging:
                    vg = self._vgs[vg.name] = snapshot.finish_merge(self.state, vg, lv, merging[0][1],
                                                                    self.user_config)
                    lv = vg.lvs[lv.name]
                create_lv_device(self.state, vg, lv, mode, read_only)
                snapshot.activate_snapshots(self.state, vg, lv, mode)
        except SimRefusal as refusal:
            self.fail(str(refusal))
            return False
        except OSError as error:
            self.fail("xenha-sim: activation of %s/%s failed: %s" % (vg.name, lv.name, error))
            return False
        return True

    # deactivation ----------------------------------------------------------------------
    def retry_deactivation(self) -> bool:
        return str(self.config.get("activation/retry_deactivation", 1)) != "0"

    def check_not_in_use(self, record, display: str, error_if_used: bool = True) -> bool:
        """lv_check_not_in_use(): holders first, then the open count with retries."""
        holders = self.state.holders_of(record)
        if not holders:
            return True
        if any(holders_registry.is_block_holder(h) for h in holders):
            if error_if_used:
                self.fail("Logical volume %s is used by another device." % display)
            return False
        retries = OPEN_COUNT_CHECK_RETRIES if self.retry_deactivation() else 1
        while retries > 0:
            retries -= 1
            if not self.state.holders_of(record):
                return True
            if retries == 0:
                break
            time.sleep(OPEN_COUNT_CHECK_USLEEP_DELAY)
        if error_if_used:
            self.fail("Logical volume %s in use." % display)
        return False

    def deactivate(self, vg_name: str, lv_name: str) -> bool:
        vg = self.vg(vg_name)
        if vg is None or lv_name not in vg.lvs:
            return True
        lv = vg.lvs[lv_name]
        _, snap_seg = vg.cow_segment(lv.name)
        if snap_seg is not None:
            lv = vg.lvs.get(snap_seg.origin, lv)
        record = self.state.by_lv_uuid(lv.id)
        if record is None:
            return True
        display = "%s/%s" % (vg.name, lv.name)
        if not self.check_not_in_use(record, display):
            return False
        snaps = [r for r in self.state.devices() if r.get("origin_uuid") == lv.id]
        open_snaps = [r for r in snaps if self.state.holders_of(r)]
        if open_snaps:
            self.fail("LV %s has open %d snapshot(s), not deactivating." % (display, len(open_snaps)))
            return False
        if self.test:
            return True
        with self.state:
            for snap in snaps:
                dm.remove_device(self.state, snap)
            dm.remove_device(self.state, record)
        return True

    def active_count(self, vg: metadata.VG) -> int:
        ids = {r.get("lv_uuid") for r in self.state.devices() if r.get("vg_uuid") == vg.id}
        return sum(1 for lv in vg.lvs.values() if vg.is_visible(lv) and lv.id in ids)


def reconcile(state: st.NodeState, before: dict, user_config=None):
    """Follow real metadata changes of LVs that are active here."""
    by_vg: dict[str, list] = {}
    for record in before.values():
        by_vg.setdefault(record.get("vg_uuid", ""), []).append(record)
    rows, _ = report_json("vgs", ["-o", "vg_name,vg_uuid"], user_config)
    names = {r.get("vg_uuid", "").replace("-", ""): r.get("vg_name") for r in rows}
    with state:
        for vg_uuid, records in by_vg.items():
            vg_name = names.get(vg_uuid.replace("-", ""))
            vg = vg_metadata(vg_name, user_config) if vg_name else None
            if vg is None:
                # the VG is gone or foreign now: a real host would keep the devices
                # of a foreign VG; only a removed VG takes them away
                if vg_name is None and not rows_contain_foreign(vg_uuid, user_config):
                    for record in records:
                        dm.remove_device(state, record)
                continue
            for record in records:
                current = state.get(record["uuid"])
                if current is None:
                    continue
                lv = vg.lv_by_id(current.get("lv_uuid", ""))
                if lv is None:
                    dm.remove_device(state, current)
                    snapshot.forget(current)
                    continue
                if lv.name != current.get("lv") or vg.name != current.get("vg"):
                    rename_device(state, current, vg.name, lv.name)
                    current = state.get(record["uuid"]) or current
                if current.get("kind") == "linear":
                    resize_device(state, vg, lv, current)


def rows_contain_foreign(vg_uuid: str, user_config=None) -> bool:
    rows, _ = report_json("vgs", ["--foreign", "-o", "vg_uuid"], user_config)
    return any(r.get("vg_uuid", "").replace("-", "") == vg_uuid.replace("-", "") for r in rows)
