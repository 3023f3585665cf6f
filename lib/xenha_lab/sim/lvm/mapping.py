"""How an LV becomes a mapped device without device-mapper: one loop device per LV of
one contiguous linear area on one PV (`devmapper.map_linear`); what cannot be mapped
that way (several segments, striped, raid, thin, a missing PV) is refused with a
`SimRefusal` worded for the user. Renames and resizes of an active LV follow here too."""

from __future__ import annotations

import sys

from xenha_lab.sim.lvm import devmapper as dm
from xenha_lab.sim.lvm import metadata
from xenha_lab.sim.lvm import state as st

class SimRefusal(Exception):
    """Activation refused by the simulator (text already worded for the user)."""


def linear_area(vg: metadata.VG, lv: metadata.LV):
    """(pv, first extent, extent count) of an LV mappable by one loop device."""
    areas = []
    for seg in lv.segments:
        if seg.type not in ("striped", "linear") or seg.stripe_count != 1:
            raise SimRefusal("xenha-sim: %s/%s is a %s LV; the simulator maps only linear LVs "
                             "(no device-mapper)." % (vg.name, lv.name, seg.type))
        (pv_key, pe), = seg.areas()
        if areas and areas[-1][0] == pv_key and areas[-1][1] + areas[-1][2] == pe:
            areas[-1] = (pv_key, areas[-1][1], areas[-1][2] + seg.extent_count)
        else:
            areas.append((pv_key, pe, seg.extent_count))
    if len(areas) != 1:
        raise SimRefusal("xenha-sim: %s/%s has %d segments on its PVs; the simulator maps only "
                         "LVs of one contiguous area (no device-mapper)." % (vg.name, lv.name, len(areas)))
    pv_key, pe, count = areas[0]
    pv = vg.pvs[pv_key]
    return pv, pe, count


def create_lv_device(state: st.NodeState, vg: metadata.VG, lv: metadata.LV, mode: str, read_only: bool):
    pv, pe, count = linear_area(vg, lv)
    if pv.missing or not pv.device.startswith("/"):
        raise SimRefusal("xenha-sim: the PV of %s/%s is missing." % (vg.name, lv.name))
    return dm.map_linear(state, vg.name, lv.name, vg.id, lv.id, pv.device, pv.pe_start + pe * vg.extent_size,
                         count * vg.extent_size, mode, read_only)


def rename_device(state: st.NodeState, record, vg_name: str, lv_name: str):
    dm.remove_links(record)
    major, minor = int(record["major"]), int(record["minor"])
    record = dict(record)
    record["vg"], record["lv"] = vg_name, lv_name
    record["name"] = st.dm_name(vg_name, lv_name, record.get("layer", ""))
    record["links"] = ",".join(dm.make_links(state, vg_name, lv_name, record.get("layer", ""), major, minor))
    state.put(record)


def resize_device(state: st.NodeState, vg: metadata.VG, lv: metadata.LV, record):
    sectors = lv.extents * vg.extent_size
    if str(sectors) == record.get("sectors"):
        return
    try:
        pv, pe, count = linear_area(vg, lv)
    except SimRefusal as refusal:
        sys.stderr.write("  %s The device keeps its old size.\n" % refusal)
        return
    offset = pv.pe_start + pe * vg.extent_size
    dm.set_loop_geometry(record["dev"], offset * 512, sectors * 512)
    record = dict(record)
    pv_major, pv_minor = dm.block_numbers(pv.device)
    record["sectors"] = str(sectors)
    record["table"] = "0 %d linear %d:%d %d" % (sectors, pv_major, pv_minor, offset)
    state.put(record)
