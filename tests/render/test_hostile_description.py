"""Issue 9, the description side: each example a hostile tester tried, as a named test.

Names are identities (refused where they are born, with the file and key), every
rendered value is checked against the grammar of the file it lands in, numbers are ones
the tools accept, bad files give located one-line errors. Property-based tests that
generalise these are in test_description_properties.py; the CLI side (validate = render,
all-or-nothing writes, simulate) in tests/cli.
"""

import os
import signal
import subprocess
import textwrap

import pytest

from conftest import REPO, need_tool
from xenha.cluster import allocation, description
from xenha.cluster.description import DescriptionError
from xenha.render import drbd, files, pacemaker, xl

BASE = """
[cluster]
name = "t"
test_cluster = true
{defaults}
[[nodes]]
name = "a"
replication_address = "{address_a}"
{node_a}
[[nodes]]
name = "b"
replication_address = "{address_b}"
"""

VM = """
[[vms]]
name = "{name}"
memory = 256
kernel = "/boot/vmlinuz"
disk_size = "1G"
{extra}
"""


def text(vms=(("x", ""),), defaults="", address_a="10.0.0.1", address_b="10.0.0.2", node_a=""):
    body = BASE.format(defaults=f"[defaults]\n{defaults}" if defaults else "", address_a=address_a,
                       address_b=address_b, node_a=node_a)
    return textwrap.dedent(body) + "".join(VM.format(name=name, extra=extra) for name, extra in vms)


def write(tmp_path, content, name="c.toml"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def refused(tmp_path, content, *, render=False) -> list[str]:
    """The problems of a description (loading it, or preparing its rendering)."""
    path = write(tmp_path, content)
    with pytest.raises(DescriptionError) as failure:
        if render:
            files.prepare(path)
        else:
            description.load(path)
    problems = failure.value.problems
    allocation_file = allocation.allocation_path(path)
    assert all(p.startswith((f"{path}: ", f"{allocation_file}: ")) and "\n" not in p for p in problems), problems
    return problems


def prepared(tmp_path, content):
    return files.prepare(write(tmp_path, content))


def assert_problem(problems, key, *fragments):
    matching = [p for p in problems if p.split(": ", 2)[1] == key]
    assert matching, (key, problems)
    assert any(all(f in p for f in fragments) for p in matching), (fragments, matching)


# --- 2. names are identities ------------------------------------------------------------
@pytest.mark.parametrize("name,why", [
    ("a--incoming", "'--incoming', the name xl gives a domain's copy during a live migration"),
    ("a--migratedaway", "'--migratedaway'"),
    ("Domain-0", "is the name of dom0"),
    ("domain-0", "is the name of dom0"),
    ("web 1", "refuses: ' '"),
    ("a.b", "refuses: '.'"),
    ("a:b", "refuses: ':'"),
    ("1web", "must start with an ASCII letter"),
    ("-web", "must start with an ASCII letter"),
    ("sh\u0430olin", "\\u0430"),                       # a Cyrillic a: looks like shaolin
    ("we\u200bb", "\\u200b"),                          # a zero-width space
    ("x" * 49, "longer than 48"),
])
def test_vm_names_other_tools_would_read_differently_are_refused(tmp_path, name, why):
    problems = refused(tmp_path, text(vms=((name, ""),)))
    assert_problem(problems, "vms[0].name", "is not valid for DRBD, LVM and Xen", why)


@pytest.mark.parametrize("name,prefix,why", [
    ("a_tmeta", "vm_", "contains '_tmeta', reserved by LVM"),
    ("x_rimage2", "vm_", "contains '_rimage'"),
    ("pool_cdata", "vm_", "contains '_cdata'"),
    ("snapshot1", "", "starts with 'snapshot', reserved by LVM"),
    ("pvmove", "", "starts with 'pvmove'"),
])
def test_names_whose_lv_lvm_reserves_are_refused(tmp_path, name, prefix, why):
    problems = refused(tmp_path, text(vms=((name, ""),), defaults=f'lv_prefix = "{prefix}"'))
    assert_problem(problems, "vms[0].name", f"gives the LV name '{prefix}{name}'", why)


def test_prefixes_leave_room_for_the_longest_name_and_the_resync_snapshot(tmp_path):
    """48 (VM name) + 65 (prefix) + 14 (-before-resync) = 127, LVM's limit."""
    problems = refused(tmp_path, text(defaults=f'lv_prefix = "{"p" * 66}"'))
    assert_problem(problems, "defaults.lv_prefix", "is too long: with a VM name of 48 characters", "longer than 127")
    problems = refused(tmp_path, text(defaults=f'drbd_resource_prefix = "{"r" * 80}"'))
    assert_problem(problems, "defaults.drbd_resource_prefix", "is too long")
    rendering = prepared(tmp_path, text(vms=(("x" * 48, ""),), defaults=f'lv_prefix = "{"p" * 65}"'))
    assert len(rendering.description.lv_name(rendering.description.vms[0]) + "-before-resync") == 127


def test_node_names_and_look_alikes(tmp_path):
    content = text().replace('name = "a"', 'name = "\u0430"')
    problems = refused(tmp_path, content)
    assert_problem(problems, "nodes[0].name", "is not a valid host name", "\\u0430", "ASCII only")


@pytest.mark.parametrize("names_,key,owners", [
    (("a", "lv_a"), "vms[1].name", "by vms[0].name and by vms[1].name"),
    (("drbd_web", "web"), "vms[1].name", "by vms[0].name and by vms[1].name"),
    (("xenha-vms",), "vms[0].name", "xenha's own configuration"),
    (("cib-bootstrap-options",), "vms[0].name", "xenha's own configuration"),
])
def test_vms_whose_pacemaker_ids_collide_are_refused(tmp_path, names_, key, owners):
    """Today `a` and `lv_a` render two objects with the id lv_a, and the pcs script
    (create only what is missing) silently skips the second VM."""
    problems = refused(tmp_path, text(vms=tuple((n, "") for n in names_)), render=True)
    assert_problem(problems, key, "Pacemaker id", "would be made twice", owners)


def test_pacemaker_ids_are_unique_in_the_cib_and_in_the_pcs_script(tmp_path):
    rendering = prepared(tmp_path, text(vms=(("a", ""), ("lva", ""), ("drbd-a", ""))))
    cib = pacemaker.ET.fromstring(rendering.files["pacemaker/cib.xml"])
    ids = [e.get("id") for e in cib.iter() if e.get("id") and e.tag not in ("obj_ref", "node")]
    assert len(ids) == len(set(ids)) and len(ids) > 40
    created = [line.split("'")[1] for line in rendering.files["pacemaker/pcs-commands.sh"].splitlines()
               if line.startswith("has '/cib/configuration//*[@id=")]
    assert len(created) == len(set(created)) == 3 * 3 + 3 * 5 + 1     # resources, constraints, tag


# --- 3. every rendered value fits the grammar of its file -------------------------------
@pytest.mark.parametrize("setting,key,fragment", [
    ('handler_dir = "/usr/sbin; touch /tmp/pwned #"', "defaults.handler_dir", "refuses: ';', ' '"),
    ('handler_dir = "sbin"', "defaults.handler_dir", "is not an absolute path"),
    ('handler_dir = "/usr/../tmp"', "defaults.handler_dir", "'..' component"),
    ('handler_dir = "/usr/local/sbin/"', "defaults.handler_dir", "empty path component"),
    ('xen_config_dir = "/etc/xen\\""', "defaults.xen_config_dir", "refuses: '\"'"),
    ('verify_alg = "sha1; } net { protocol A"', "defaults.verify_alg", "is not a DRBD verify algorithm"),
    ('verify_alg = "hmac(sha1)"', "defaults.verify_alg", "refuses: '(', ')'"),
    ('resync_rate = "100M; fencing dont-care"', "defaults.resync_rate", "is not a DRBD resync rate"),
    ('resync_rate = "5G"', "defaults.resync_rate", "at most 4G"),
    ('resync_snapshot = "20%\\"; touch /tmp/x; \\""', "defaults.resync_snapshot", "use a percentage"),
    ('resync_snapshot = "101%"', "defaults.resync_snapshot", "use a percentage"),
    ('lv_prefix = "../../etc/"', "defaults.lv_prefix", "is not an LV name prefix: has characters LVM refuses: '/'"),
    ('drbd_resource_prefix = "r "', "defaults.drbd_resource_prefix", "refuses: ' '"),
    ('volume_group = "vg0/../x"', "defaults.volume_group", "refuses: '/'"),
    ('migration_transport = "ssh\\nrm -rf /"', "defaults.migration_transport", "unprintable"),
    ('migration_transport = "  "', "defaults.migration_transport", "is empty"),
])
def test_defaults_that_would_inject_into_a_rendered_file_are_refused(tmp_path, setting, key, fragment):
    assert_problem(refused(tmp_path, text(defaults=setting)), key, fragment)


@pytest.mark.parametrize("setting,key,fragment", [
    ('network = "xenbr0, script=/tmp/evil"', "vms[0].network", "is not a bridge name: has characters"),
    ('network = "br0\'"', "vms[0].network", "is not a bridge name"),
    ('network = "averyveryverylongbridge"', "vms[0].network", "longer than 15"),
    ('extra = "root=/dev/xvda\\" on_crash = \\"preserve"', "vms[0].extra", "cannot be written into an xl config"),
    ('extra = "console=hvc0\\nname = \\"evil\\""', "vms[0].extra", "unprintable"),
    ('bootloader = "pygrub --args"', "vms[0].bootloader", "is not a bootloader"),
    ('drbd_resource = "r1 { }"', "vms[0].drbd_resource", "is not a valid DRBD resource name"),
    ('drbd_resource = "12345"', "vms[0].drbd_resource", "is a number"),
])
def test_vm_values_that_would_inject_are_refused(tmp_path, setting, key, fragment):
    content = text(vms=(("x", setting),))
    if "bootloader" in setting:
        content = content.replace('kernel = "/boot/vmlinuz"\n', "")
    assert_problem(refused(tmp_path, content), key, fragment)


def test_kernel_must_be_an_absolute_plain_path(tmp_path):
    content = text().replace('kernel = "/boot/vmlinuz"', 'kernel = "vmlinuz\' ]\\ndisk = [ \'x"')
    assert_problem(refused(tmp_path, content), "vms[0].kernel", "is not a kernel path")


@pytest.mark.parametrize("setting,key,fragment", [
    ('options = { "pass word" = "x" }', 'cluster.fencing.options."pass word"', "is not a fence agent option name"),
    ('options = { "a=b" = "x" }', 'cluster.fencing.options."a=b"', "is not a fence agent option name"),
    ('options = { password = "se\\ncret" }', "cluster.fencing.options.password", "unprintable"),
    ('options = { ip = ["a", "b"] }', "cluster.fencing.options.ip", "must be a string, an integer or a boolean"),
])
def test_fence_options_reach_pcs_and_the_cib_only_when_they_fit(tmp_path, setting, key, fragment):
    content = text().replace("test_cluster = true", f'[cluster.fencing]\nagent = "fence_ipmilan"\n{setting}')
    assert_problem(refused(tmp_path, content), key, fragment)


def test_fence_options_of_other_types_are_rendered_as_pacemaker_reads_them(tmp_path):
    content = text().replace("test_cluster = true", '[cluster.fencing]\nagent = "fence_ipmilan"\n'
                                                    'options = { lanplus = true, port = 623, password = "p\u00e4ss w\'rd" }')
    rendering = prepared(tmp_path, content)
    script = rendering.files["pacemaker/pcs-commands.sh"]
    assert "lanplus=true" in script and "port=623" in script
    assert "'password=p\u00e4ss w'\"'\"'rd'" in script            # quoted for the shell, as it is


def test_migration_address_is_rendered_as_the_node_attribute_the_agent_reads(tmp_path):
    """It used to be accepted and ignored; now each node carries it and every domain
    reads it from there (xen-domain's migration_address_attribute)."""
    rendering = prepared(tmp_path, text(node_a='migration_address = "mk1-mig.example.org"'))
    cib = pacemaker.ET.fromstring(rendering.files["pacemaker/cib.xml"])
    values = {n.get("uname"): {p.get("name"): p.get("value") for p in n.iter("nvpair")} for n in cib.iter("node")}
    attribute = pacemaker.MIGRATION_ADDRESS_ATTRIBUTE
    assert values == {"a": {attribute: "mk1-mig.example.org"}, "b": {attribute: "b"}}
    domain = cib.find(".//primitive[@type='xen-domain']")
    params = {p.get("name"): p.get("value") for p in domain.find("instance_attributes")}
    assert params["migration_address_attribute"] == attribute
    from xenha.agents.xen_domain import PARAMETERS
    assert "migration_address_attribute" in {p.name for p in PARAMETERS}
    script = rendering.files["pacemaker/pcs-commands.sh"]
    assert f"pcs node attribute a {attribute}=mk1-mig.example.org" in script
    # Without a migration address of its own, nothing changes: the agent uses node names.
    plain = prepared(tmp_path, text(node_a='migration_address = "a"'))
    assert attribute not in plain.files["pacemaker/cib.xml"]


@pytest.mark.parametrize("address,fragment", [
    ("mk1; rm -rf /", "is not an IP address or a host name"),
    ("-oProxyCommand=x", "refuses: '='"),
    ("-mk1", "must not start or end with '-'"),
    ("10.0.0.256", "is neither an IP address nor a host name"),
    ("host..example", "empty label"),
])
def test_migration_addresses_must_be_addresses(tmp_path, address, fragment):
    problems = refused(tmp_path, text(node_a=f'migration_address = "{address}"'))
    assert_problem(problems, "nodes[0].migration_address", fragment)


# --- 4. numbers the tools accept ----------------------------------------------------------
def test_explicit_numbers_are_never_given_to_an_allocated_vm_on_the_first_render(tmp_path):
    """`first` has no numbers, `second` states the base minor and port: `first` used to
    get them too, and the clash only showed on the next render."""
    rendering = prepared(tmp_path, text(vms=(("first", ""), ("second", "drbd_minor = 1\ndrbd_port = 7789"))))
    assert rendering.slots["second"] == allocation.Slot("vm_second", 1, 7789)
    assert (rendering.slots["first"].minor, rendering.slots["first"].port) == (2, 7790)
    assert rendering.added == ["first"]


def test_an_explicit_minor_alone_is_still_reserved(tmp_path):
    rendering = prepared(tmp_path, text(vms=(("first", ""), ("second", "drbd_minor = 1"))))
    assert rendering.slots["first"].minor == 2 and rendering.slots["second"].minor == 1
    assert rendering.slots["first"].port != rendering.slots["second"].port


def test_ports_stop_at_65535(tmp_path):
    content = text(vms=(("one", ""), ("two", "")), defaults="drbd_port_base = 65535")
    assert_problem(refused(tmp_path, content, render=True), "vms[1]", "no free DRBD port")
    rendering = prepared(tmp_path, text(vms=(("one", ""),), defaults="drbd_port_base = 65535"))
    assert rendering.slots["one"].port == 65535


def test_a_negative_minor_in_the_allocation_file_is_refused(tmp_path):
    (tmp_path / "c.alloc.toml").write_text('[vms.x]\ndrbd_resource = "vm_x"\ndrbd_minor = -5\ndrbd_port = 7789\n')
    problems = refused(tmp_path, text(), render=True)
    assert problems == [f"{tmp_path / 'c.alloc.toml'}: vms.x: drbd_minor -5 is not a DRBD minor (0-1048575)"]


@pytest.mark.parametrize("entry,fragment", [
    ('drbd_resource = "vm_x"\ndrbd_minor = 1.5\ndrbd_port = 7789', "drbd_minor 1.5 is not a DRBD minor"),
    ('drbd_resource = "vm_x"\ndrbd_minor = true\ndrbd_port = 7789', "drbd_minor True is not a DRBD minor"),
    ('drbd_resource = "vm_x"\ndrbd_minor = 1\ndrbd_port = 65536', "drbd_port 65536 is not a port"),
    ('drbd_resource = "vm x"\ndrbd_minor = 1\ndrbd_port = 7789', "drbd_resource 'vm x' has characters"),
    ('drbd_resource = "vm_x"\ndrbd_minor = 1', "needs drbd_resource, drbd_minor and drbd_port"),
])
def test_a_corrupt_allocation_entry_names_file_and_key(tmp_path, entry, fragment):
    (tmp_path / "c.alloc.toml").write_text(f"[vms.x]\n{entry}\n")
    problems = refused(tmp_path, text(), render=True)
    assert_problem(problems, "vms.x", fragment)


def test_two_allocation_entries_with_one_minor_are_refused(tmp_path):
    (tmp_path / "c.alloc.toml").write_text('[vms.x]\ndrbd_resource = "vm_x"\ndrbd_minor = 1\ndrbd_port = 7789\n'
                                           '[vms.y]\ndrbd_resource = "vm_y"\ndrbd_minor = 1\ndrbd_port = 7790\n')
    problems = refused(tmp_path, text(vms=(("x", ""), ("y", ""))), render=True)
    assert_problem(problems, "vms[1]", "DRBD minor 1 is also x's")


def test_ipv6_replication_addresses_use_drbds_ipv6_syntax_and_drbdadm_accepts_them(tmp_path):
    need_tool("drbdadm")
    rendering = prepared(tmp_path, text(address_a="FD00::0001", address_b="fd00::2"))
    (vm,) = rendering.description.vms
    slot = rendering.slots[vm.name]
    for version, program in ((9, "drbdadm"), (8, "/lib/drbd/drbdadm-84")):
        res = tmp_path / f"{version}.res"
        res.write_text(drbd.render(rendering.description, vm, slot, version))
        assert "address ipv6 [fd00::1]:7789;" in res.read_text()
        conf = tmp_path / "drbd.conf"
        conf.write_text(f'global {{ usage-count no; }}\ninclude "{res}";\n')
        env = dict(os.environ, __DRBD_NODE__="a", DRBD_DRIVER_VERSION_OVERRIDE="9.2.0")
        dumped = subprocess.run([program, "-c", str(conf), "dump", slot.resource], capture_output=True,
                                text=True, env=env)
        assert dumped.returncode == 0, dumped.stderr
        assert "ipv6 [fd00::1]:7789" in dumped.stdout and "ipv6 [fd00::2]:7789" in dumped.stdout


@pytest.mark.parametrize("a,b,fragment", [
    ("fe80::1%eth0", "10.0.0.2", "scope ids are not supported"),
    ("0.0.0.0", "10.0.0.2", "is not a unicast address"),
    ("\uff11.0.0.1", "10.0.0.2", "is not an IP address"),          # fullwidth digit one
    ("10.0.0.1", "::ffff:10.0.0.1", None),                          # different families
    ("10.0.0.1", "10.0.0.01", "is not an IP address"),
])
def test_replication_addresses(tmp_path, a, b, fragment):
    problems = refused(tmp_path, text(address_a=a, address_b=b))
    if fragment:
        assert any(fragment in p for p in problems), problems
    else:
        assert_problem(problems, "vms[0].replicas", "different families")


def test_duplicate_addresses_are_found_in_any_spelling(tmp_path):
    problems = refused(tmp_path, text(address_a="fd00::1", address_b="FD00:0::1"))
    assert_problem(problems, "nodes[1].replication_address", "fd00::1 is also the address of nodes[0]")


# --- 8. errors that say where and what ----------------------------------------------------
@pytest.mark.parametrize("size,fragment", [
    ("\u00b2G", "is not a size"),            # superscript two: isdigit() but not int()
    ("\uff11G", "is not a size"),            # fullwidth one
    ("\u0663G", "is not a size"),            # Arabic-Indic three: int() would read it
    (" 1G", "is not a size"),
    ("1025T", "is larger than DRBD's largest device"),
    ("3M", "is too small"),
])
def test_odd_sizes_are_refused_with_their_key(tmp_path, size, fragment):
    content = text().replace('disk_size = "1G"', f'disk_size = "{size}"')
    assert_problem(refused(tmp_path, content), "vms[0].disk_size", fragment)


def test_resync_snapshot_sizes_are_written_as_the_handler_reads_them(tmp_path):
    rendering = prepared(tmp_path, text(defaults='resync_snapshot = "2GiB"'))
    res = next(t for p, t in rendering.files.items() if p.endswith(".res"))
    assert "xenha-resync-snapshot before --size 2G" in res
    from xenha.handlers.resync_snapshot import SUFFIX, parse_size
    assert parse_size("2G", 0, 4 << 20) == 2 << 30
    assert SUFFIX == description.RESYNC_SNAPSHOT_SUFFIX


@pytest.mark.parametrize("content,fragment", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "line 1: not UTF-8 text (byte 0x89)"),
    (b'[cluster]\nname = "t"\n\xff\xfe', "line 3: not UTF-8 text (byte 0xff)"),
    (b"a = " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    (b"a = " + b"[\n" * 3000 + b"]\n" * 3000, "nested too deeply"),
    (b"a" + b".a" * 100000 + b" = 1", "line 1: nested too deeply"),
    (b"x = {" * 400 + b"}" * 400, "nested too deeply"),
    (b"[cluster\n", "not valid TOML"),
])
def test_unreadable_files_give_one_located_line(tmp_path, content, fragment):
    problems = refused(tmp_path, content)
    assert len(problems) == 1 and fragment in problems[0], problems


def test_a_fifo_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "c.toml"
    os.mkfifo(fifo)
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("reading a FIFO blocked"))
    signal.alarm(10)
    try:
        with pytest.raises(DescriptionError, match="is not a regular file"):
            description.load(str(fifo))
        (tmp_path / "d.toml").write_text(text())
        os.mkfifo(tmp_path / "d.alloc.toml")
        with pytest.raises(DescriptionError, match="d.alloc.toml: the allocation file is not a regular file"):
            files.prepare(str(tmp_path / "d.toml"))
    finally:
        signal.alarm(0)


def test_a_directory_is_refused(tmp_path):
    (tmp_path / "c.toml").mkdir()
    with pytest.raises(DescriptionError, match="is not a regular file"):
        description.load(str(tmp_path / "c.toml"))


@pytest.mark.parametrize("content,key,fragment", [
    (b"\x00", None, "not valid TOML"),
    (b'[allocation]\nx = 1\n', "allocation", "unknown key"),
    (b'vms = 3\n', "vms", "must be a table of VMs"),
    (b'[vms."a b"]\ndrbd_resource = "r"\ndrbd_minor = 1\ndrbd_port = 2\n', 'vms."a b"', "is not a VM name"),
    (b'\xc3\x28', None, "not UTF-8"),
])
def test_a_corrupt_allocation_file_names_file_and_key(tmp_path, content, key, fragment):
    (tmp_path / "c.alloc.toml").write_bytes(content)
    path = write(tmp_path, text())
    with pytest.raises(DescriptionError) as failure:
        files.prepare(path)
    (problem,) = failure.value.problems
    assert problem.startswith(f"{tmp_path / 'c.alloc.toml'}: ") and fragment in problem, problem
    if key:
        assert problem.split(": ")[1] == key, problem


def test_keys_with_odd_characters_are_quoted_in_messages(tmp_path):
    content = text() + '\n[defaults."evil\\nkey"]\n'
    (problem,) = refused(tmp_path, content)
    assert 'defaults."evil\\nkey": unknown key' in problem


def test_wrong_types_anywhere_are_problems_not_crashes():
    base = description.from_data  # from_data takes any parsed TOML
    for data in ([], {"nodes": "x"}, {"nodes": [1, 2]}, {"vms": {"a": 1}}, {"cluster": []},
                 {"cluster": {"fencing": {"devices": []}}}, {"vms": [{"replicas": "ab"}]},
                 {"defaults": {"protocol": 3}}):
        with pytest.raises(DescriptionError):
            base(data, "d.toml")


# --- the renderers refuse once more what should never reach them --------------------------
def test_renderers_refuse_values_the_loader_would_have_refused(tmp_path):
    rendering = prepared(tmp_path, text())
    desc = rendering.description
    (vm,) = desc.vms
    slot = rendering.slots[vm.name]
    import dataclasses
    with pytest.raises(DescriptionError, match="cannot be written into a DRBD resource file"):
        drbd.render(dataclasses.replace(desc, defaults=dataclasses.replace(desc.defaults, verify_alg="a; b")),
                    vm, slot)
    with pytest.raises(DescriptionError, match="cannot be written into an xl config"):
        xl.render(desc, dataclasses.replace(vm, extra='x" y'), slot)
    with pytest.raises(DescriptionError, match="cannot be written into an xl device spec"):
        xl.render(desc, dataclasses.replace(vm, network="br0,script=x"), slot)
    with pytest.raises(DescriptionError, match="Pacemaker id"):
        pacemaker.build(dataclasses.replace(desc, vms=(dataclasses.replace(vm, name="a'b"),)),
                        {"a'b": slot})


def test_a_newline_in_the_description_path_cannot_end_a_comment(tmp_path):
    directory = tmp_path / "x\nresource evil {"
    directory.mkdir()
    rendering = prepared(directory, text())
    for path, rendered in rendering.files.items():
        assert "\nresource evil" not in rendered, path


def test_examples_still_render_unchanged_where_nothing_was_wrong():
    howto = REPO / "cluster-config/examples/howto.toml"
    rendering = files.prepare(str(howto))
    assert pacemaker.MIGRATION_ADDRESS_ATTRIBUTE not in rendering.files["pacemaker/cib.xml"]
    assert "address ipv4 10.0.0.1:7789;" in rendering.files["drbd.d/vm_shaolin.res"]
