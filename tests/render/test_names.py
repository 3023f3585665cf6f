"""xenha.names against the tools' own rules: any name a check accepts, the tool accepts
(real lvm2, drbdadm, crm_verify on a CIB), and where a check is stricter than the tool
it is for a documented reason. Property-based, bounded and derandomized; one tool run
per example (a list of names) where the tool allows it."""

import os
import subprocess
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import need_tool
from xenha import names

BOUNDED = dict(derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
# What lvm(8) and lvm2 2.03.16 reserve (listed here, not taken from the code under test).
LVM_FRAGMENTS = ["_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_imeta", "_iorig", "_mimage", "_mlog",
                 "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_vorigin", "_wcorig",
                 "snapshot", "pvmove", ".", "..", "-", "_", "+", "a" * 60, "vm_", "x", "Z9"]


def fragments(alphabet, extra):
    """Names made of pieces: reserved words and separators, and short random runs."""
    piece = st.sampled_from(extra) | st.text(alphabet, min_size=1, max_size=4)
    return st.lists(piece, min_size=1, max_size=5).map("".join)


# --- LVM ---------------------------------------------------------------------------------------
def real_lvm() -> str:
    for candidate in ("/usr/sbin/lvm", "/sbin/lvm"):   # not the lab's simulated lvm on PATH
        if os.path.exists(candidate):
            return candidate
    return need_tool("lvm-real")


@pytest.fixture(scope="module")
def lvm(tmp_path_factory):
    """Run lvcreate in lvm's shell on names, without devices or device-mapper: each
    command stops either at the name ("reserved", "invalid") or at the missing VG."""
    binary = real_lvm()
    directory = tmp_path_factory.mktemp("lvm")
    (directory / "lock").mkdir()
    (directory / "lvm.conf").write_text(
        "activation { udev_sync=0 udev_rules=0 monitoring=0 }\n"
        f'global {{ locking_dir="{directory}/lock" use_lvmpolld=0 notify_dbus=0 event_activation=0 }}\n'
        'devices { global_filter=["r|.*|"] filter=["r|.*|"] hints="none" }\n')
    env = dict(os.environ, LVM_SYSTEM_DIR=str(directory), LVM_SUPPRESS_FD_WARNINGS="1")

    def accepts(lv_names: list[str]) -> list[bool]:
        script = "".join(f"lvcreate --driverloaded n -qq -n {name} -L 4M novg{i}\n" for i, name in enumerate(lv_names))
        result = subprocess.run([binary], input=script, capture_output=True, text=True, env=env, timeout=60)
        said = result.stdout + result.stderr
        return [f'Volume group "novg{i}" not found' in said for i in range(len(lv_names))]
    return accepts


def test_the_lvm_oracle_refuses_what_lvm_refuses(lvm):
    assert lvm(["ok", "a_tmeta", "snapshot", "-x", "a%b", "pvmove9", "a" * 128, "a" * 127]) == [
        True, False, False, False, False, False, False, True]


def test_every_string_lvm_reserves_is_refused_by_both(lvm):
    candidates = [f"a{fragment}b" for fragment in LVM_FRAGMENTS if fragment.startswith("_") and len(fragment) > 1]
    candidates += ["snapshot", "snapshotx", "pvmove", "pvmove0", ".", ".."]
    assert not any(lvm(candidates))
    assert all(names.check_lv_name(name) for name in candidates)


# Characters without meaning to lvm's shell (no blank, quote or #).
LVM_ALPHABET = "abcXYZ019+_.-%@\u00e9"


@settings(max_examples=20, **BOUNDED)
@given(st.lists(fragments(LVM_ALPHABET, LVM_FRAGMENTS), min_size=1, max_size=25, unique=True))
def test_lv_names_the_check_accepts_lvcreate_accepts(lvm, lv_names):
    verdicts = lvm(lv_names)
    for name, lvm_accepts in zip(lv_names, verdicts):
        ours = names.check_lv_name(name)
        if ours is None:
            assert lvm_accepts, f"{name!r}: accepted by xenha.names, refused by lvcreate"
        elif lvm_accepts:
            # Stricter than lvm 2.03.16 only where newer lvm2 reserves a string.
            assert "_vcorig" in name, f"{name!r}: refused by xenha.names ({ours}), accepted by lvcreate"


# --- DRBD --------------------------------------------------------------------------------------
RES = """resource {name} {{
    on a {{ node-id 0; device /dev/drbd1 minor 1; disk {disk}; meta-disk internal; address ipv4 10.0.0.1:7789; }}
    on b {{ node-id 1; device /dev/drbd1 minor 1; disk {disk}; meta-disk internal; address ipv4 10.0.0.2:7789; }}
}}
"""


@pytest.fixture(scope="module")
def drbdadm(tmp_path_factory):
    """(resource name, disk path) -> the resource drbdadm dumped, or None if it refused."""
    need_tool("drbdadm")
    directory = tmp_path_factory.mktemp("drbd")
    res, conf = directory / "r.res", directory / "drbd.conf"
    conf.write_text(f'global {{ usage-count no; }}\ninclude "{res}";\n')
    env = dict(os.environ, __DRBD_NODE__="a", DRBD_DRIVER_VERSION_OVERRIDE="9.2.0")

    def reads(name: str, disk: str = "/dev/vg0/x"):
        res.write_text(RES.format(name=name, disk=disk))
        result = subprocess.run(["drbdadm", "-c", str(conf), "dump", "--", name], capture_output=True,
                                encoding="utf-8", errors="replace", env=env, timeout=30)
        return result.stdout if result.returncode == 0 else None
    return reads


def test_the_drbdadm_oracle_refuses_what_drbdadm_refuses(drbdadm):
    assert drbdadm("r0") and drbdadm("r0", "/dev/a.b/c-d_e")
    assert drbdadm("a+b") is None and drbdadm("123") is None and drbdadm("a" * 129) is None
    assert drbdadm("r0", "/dev/a+b/c") is None and drbdadm("r0", "/dev/a:b") is None


DRBD_ALPHABET = "abXZ09_.-+:/=@,\u00e9"


@settings(max_examples=40, **BOUNDED)
@given(fragments(DRBD_ALPHABET, ["-", ".", "..", "1", "a" * 70, "0x1", "1e5"]))
def test_resource_names_the_check_accepts_drbdadm_reads_as_one_name(drbdadm, name):
    dumped = drbdadm(name)
    ours = names.check_drbd_resource_name(name)
    if ours is None:
        assert dumped is not None and f"resource {name} {{" in dumped, f"{name!r}: refused by drbdadm"
    elif dumped is not None:
        # Stricter than drbdadm only for a leading dot ("." and ".." are refused by the
        # DRBD kernel module, which drbdadm dump does not ask) or dash (read as an option
        # wherever a command line lacks "--").
        assert name.startswith((".", "-")), f"{name!r}: refused by xenha.names ({ours}), read by drbdadm"


@settings(max_examples=25, **BOUNDED)
@given(fragments(DRBD_ALPHABET, ["/dev/", "/", "vg0", "-", "+"]).map(lambda p: "/" + p))
def test_paths_the_check_accepts_drbdadm_reads_as_one_word(drbdadm, path):
    dumped = drbdadm("r0", path)
    if names.check_drbd_word(path) is None:
        assert dumped is not None and f" {path};" in dumped, f"{path!r}: refused or split by drbdadm"


# --- Pacemaker ids -----------------------------------------------------------------------------
ID_ALPHABET = "aZ09_.-:\u00e9\u0430"


def crm_verify_accepts_ids(directory, ids) -> tuple[bool, str]:
    cib = ET.Element("cib", {"validate-with": "pacemaker-3.9", "epoch": "1", "num_updates": "0",
                             "admin_epoch": "0"})
    configuration = ET.SubElement(cib, "configuration")
    ET.SubElement(configuration, "crm_config")
    ET.SubElement(configuration, "nodes")
    resources = ET.SubElement(configuration, "resources")
    for ident in ids:
        ET.SubElement(resources, "primitive", {"id": ident, "class": "ocf", "provider": "heartbeat", "type": "Dummy"})
    ET.SubElement(configuration, "constraints")
    ET.SubElement(cib, "status")
    path = directory / "cib.xml"
    path.write_text(ET.tostring(cib, encoding="unicode"))
    checked = subprocess.run(["crm_verify", "-x", str(path)], capture_output=True, text=True, timeout=60)
    failed = "validity error" in checked.stderr or "does not conform" in checked.stderr or \
        "error:" in checked.stderr.lower() or checked.returncode not in (0, 78)
    return not failed, checked.stderr


def test_crm_verify_refuses_an_id_that_is_not_an_xml_id(tmp_path):
    need_tool("crm_verify")
    assert crm_verify_accepts_ids(tmp_path, ["ok", "_x.y-z"])[0]
    assert not crm_verify_accepts_ids(tmp_path, ["1abc"])[0]
    assert not crm_verify_accepts_ids(tmp_path, ["a:b"])[0]
    assert not crm_verify_accepts_ids(tmp_path, ["same", "same"])[0]


@settings(max_examples=8, **BOUNDED)
@given(st.lists(fragments(ID_ALPHABET, ["-", ".", "_", "1", "lv_", "-clone"]), min_size=1, max_size=30, unique=True))
def test_ids_the_check_accepts_the_cib_schema_accepts(tmp_path_factory, ids):
    need_tool("crm_verify")
    accepted = [ident for ident in ids if names.check_pacemaker_id(ident) is None]
    if accepted:
        ok, said = crm_verify_accepts_ids(tmp_path_factory.mktemp("ids"), accepted)
        assert ok, (accepted, said)


# --- the cheap checks themselves ------------------------------------------------------------------
@settings(max_examples=300, **BOUNDED)
@given(st.text(max_size=20) | st.binary(max_size=4) | st.integers() | st.none())
def test_every_check_answers_none_or_a_reason_for_anything(value):
    for check in (names.check_identity, names.check_domain_name, names.check_lv_name, names.check_vg_name,
                  names.check_drbd_resource_name, names.check_drbd_word, names.check_crypto_name,
                  names.check_pacemaker_id, names.check_node_name, names.check_hostname,
                  names.check_absolute_path, names.check_command, names.check_interface_name, names.check_line,
                  names.check_ascii_line):
        why = check(value)
        assert why is None or (isinstance(why, str) and why), (check.__name__, value)
        if why is None and check is not names.check_line:
            assert isinstance(value, str) and value.isascii() and value.isprintable(), (check.__name__, value)


@pytest.mark.parametrize("name", ["a--incoming", "web--migratedaway", "Domain-0", "DOMAIN-0", "123"])
def test_domain_names_xl_gives_other_domains_are_refused(name):
    assert names.check_domain_name(name) and names.check_identity(name)


def test_names_is_cheap_to_import():
    """Agents import it on every operation: it imports nothing at all (no re, no enum)."""
    def imported(code):
        result = subprocess.run(["python3", "-S", "-X", "importtime", "-c", code], capture_output=True, text=True,
                                env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(names.__file__))))
        assert result.returncode == 0, result.stderr
        return {line.split("|")[-1].strip() for line in result.stderr.splitlines()[1:]}
    added = imported("import xenha.names") - imported("import xenha")
    assert added == {"xenha.names"}, added


@pytest.mark.parametrize("name", ["with", "then", "Promoted", "op", "meta", "clone", "stop"])
def test_names_pcs_reads_as_keywords_are_refused_for_vms_and_nodes(name):
    """`pcs constraint colocation add with with Promoted ...` would be misread."""
    assert "keyword" in names.check_identity(name)
    assert "keyword" in names.check_node_name(name)


def test_all_is_not_a_drbd_resource_name():
    assert "every resource" in names.check_drbd_resource_name("all")
    assert names.check_drbd_resource_name("allegro") is None
