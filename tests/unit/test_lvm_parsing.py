"""lvm2 report parsing against the verbatim samples (shared/samples/lvm_*.txt)."""

import pytest

from conftest import sample_blocks
from xenha.tools.dmsetup import DmError, dm_name, parse_info
from xenha.tools.lvm_report import LogicalVolume, ReportError, VolumeGroup, parse_report


def block(name, contains):
    for command, output, rc in sample_blocks(name):
        if contains in command:
            return output, rc
    raise AssertionError(f"no block with {contains!r} in {name}")


def test_lv_rows_without_device_mapper():
    output, rc = block("lvm_03_reports.txt", "lv_dm_path,origin,lv_uuid")
    rows = parse_report(output, "lv")
    volumes = [LogicalVolume(row) for row in rows]
    assert rc == 0 and [v.full_name for v in volumes] == ["vgtest/lv", "vgtest/lv2"]
    lv = volumes[0]
    assert lv.size == 67108864 and lv.tags == ["owner_node1", "pacemaker_owner=node1"]
    assert lv.path == "/dev/vgtest/lv" and lv.uuid == "q0kuhb-2qAf-7CZO-6n8D-rTxj-zlWo-uRNvvZ"
    assert lv.active is None and lv.open is None, "X means lvm cannot tell, never 'inactive'"


def test_interleaved_stderr_is_not_silently_accepted():
    # Without activation=0 the sample's stream mixes device-mapper errors into the JSON.
    output, _rc = block("lvm_03_reports.txt", "lvs --reportformat json -o lv_name,vg_name,lv_attr,lv_size,lv_active,lv_tags")
    with pytest.raises(ReportError):
        parse_report(output, "lv")


def test_vg_rows_exported_and_tags():
    output, _rc = block("lvm_06_other_ops.txt", "vg_exported,vg_tags")
    (group,) = [VolumeGroup(row) for row in parse_report(output, "vg")]
    assert group.exported and group.tags == ["vgtag1"]


def test_vg_system_id_and_foreign():
    blocks = sample_blocks("lvm_09_systemid_two_nodes.txt")
    owned = [out for cmd, out, _rc in blocks if "lvm-node1 vgs --reportformat" in cmd][0]
    (group,) = [VolumeGroup(r) for r in parse_report(owned, "vg")]
    assert group.systemid == "node1" and not group.exported
    invisible = [out for cmd, out, _rc in blocks if "lvm-node2 vgs --reportformat" in cmd][0]
    assert parse_report(invisible, "vg") == []


def test_not_found_is_an_empty_list_and_the_log_key_is_tolerated():
    clean, rc = block("lvm_07_json_std.txt", "nosuchvg/nosuchlv 2>/dev/null")
    assert rc == 5 and parse_report(clean, "lv") == []
    with_log, rc = block("lvm_07_json_std.txt", "log{report_command_log=1}' --reportformat")
    assert rc == 5 and parse_report(with_log, "lv") == []


def test_snapshot_attributes():
    output, _rc = block("lvm_08_snapshot_via_vgcfgrestore.txt", "snap_percent")
    origin, snap = [LogicalVolume(row) for row in parse_report(output, "lv")]
    assert origin.attr == "owi-XXs---" and not origin.is_snapshot
    assert snap.is_snapshot and snap.origin == "lv"


@pytest.mark.parametrize("attr,active,open_,partial", [
    ("-wi-ao----", True, True, False),       # a real host (samples/lvm_13)
    ("Rwi-a-r---", True, False, False),
    ("-wi-------", False, False, False),
    ("-wi-a---p-", True, False, True),
    ("-wi-XX----", None, None, False),
])
def test_attr_decoding(attr, active, open_, partial):
    lv = LogicalVolume({"vg_name": "vg", "lv_name": "lv", "lv_attr": attr})
    assert (lv.active, lv.open, lv.partial) == (active, open_, partial)


def test_unreadable_json_is_an_error():
    with pytest.raises(ReportError):
        parse_report("  Volume group \"x\" not found\n", "vg")
    with pytest.raises(ReportError):
        parse_report('{"report": [ {"vg": [ {"vg_name":"x"', "vg")


def test_dm_names_double_dashes():
    assert dm_name("vg0", "vm_shaolin") == "vg0-vm_shaolin"
    assert dm_name("my-vg", "a-b") == "my--vg-a--b"


def test_dmsetup_rows():
    # dmsetup info -c --noheadings --separator '|' -o name,attr,open,segments,uuid
    devices = parse_info("vg0-vm_shaolin|L--w|1|1|LVM-abc\nvg0-other|Ls-w|0|1|LVM-def\n")
    assert [(d.name, d.live, d.suspended, d.open_count) for d in devices] == [
        ("vg0-vm_shaolin", True, False, 1), ("vg0-other", True, True, 0)]
    assert parse_info("No devices found\n") == []
    with pytest.raises(DmError):
        parse_info("vg0-x|L--w|one|1|LVM-abc\n")


def test_lv_names_from_device_mapper_nodes(tmp_path):
    from xenha.tools.dmsetup import mapped, names_of_vg
    for name in ("vg0-vm_shaolin", "vg0-other", "my--vg-a--b", "vg00-x", "vg0-snap-cow"):
        (tmp_path / name).write_text("")
    assert names_of_vg("vg0", str(tmp_path)) == ["other", "vm_shaolin"]
    assert names_of_vg("my-vg", str(tmp_path)) == ["a-b"]
    # a regular file (or nothing) is not an active device
    assert not mapped("vg0-other", str(tmp_path)).active
    assert not mapped("vg0-none", str(tmp_path)).active
