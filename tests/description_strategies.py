"""Hypothesis strategies for cluster descriptions, shared by tests/render and tests/cli:
good descriptions (many values at the edge of what the tools accept), and good ones
with one or two faults from what a hostile tester tries."""

from hypothesis import strategies as st

# Good values, many at the edge of what the tools accept (longest names, highest
# numbers, every printable character a field may hold), then none, one or two faults
# from what a hostile tester tries.
PRINTABLE_BUT_QUOTES = "".join(chr(c) for c in range(32, 127) if chr(c) not in '"\\')
GOOD_VM_NAME = st.one_of(
    st.from_regex(r"[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,4})?", fullmatch=True),
    st.sampled_from(["Z", "Web_1-a", "a" * 48, "vm-" + "9" * 45, "A_b_c-D"]),
).filter(lambda n: n != "xenha-vms" and not n.startswith("nodes-"))
# Migration copies, dom0, LVM's reserved names, ids that collide with xenha's own,
# look-alikes, separators of every file format the name lands in.
HOSTILE_NAMES = ["a--incoming", "b--migratedaway", "Domain-0", "a_tmeta", "x_cdata",
                 "xenha-vms", "cib-bootstrap-options", "sh\u0430olin", "a b", "a;b", "a'b", 'a"b',
                 "a,b", "a=b", "a/b", "../a", "-a", "1", "123", "a\nb", "a\u200bb", "", "x" * 49, "a.b"]
# Pairs of VM names whose derived ids collide (VM a's LV clone is lv_a, ...).
COLLIDING = [("a", "lv_a"), ("a", "drbd_a"), ("web", "lv_web-clone"), ("a", "order-a-lv-then-drbd"),
             ("a", "colocation-a-with-promoted-drbd"), ("a", "a-instance_attributes")]

# key: (good values, bad values). With the longest VM name (48), the longest LV prefix
# makes a resync snapshot name of exactly 127 characters, LVM's limit.
DEFAULTS = {
    # LVM allows "+", but drbdadm ends an unquoted word (the backing device path) there.
    "volume_group": (["vg0", "data-vg", "vg.1", "_V_g"], ["-vg", "..", "vg/0", "vg 0", "v\u0261", "v+g"]),
    "lv_prefix": (["vm_", "", "lv-", "x.", "p" * 65], ["../../etc/", "a b", "-", "snapshot", "p_tmeta", "+",
                                                     "p" * 66]),
    "drbd_resource_prefix": (["vm_", "", "r-", "R.", "x" * 79], ["a b", "r{", "-", "r;"]),
    "drbd_port_base": ([7789, 1, 65530], [0, -1, 65536, True, 65535]),
    "drbd_minor_base": ([1, 0, 1048570], [-1, 1048576, "1", 1048575]),
    "protocol": (["C", "A", "B"], ["D", "c", "C; x"]),
    "resync_rate": (["100M", "1G", "4G", "4194304k", "1", "40960K"], ["5G", "0", "1t", "100M; x", "1.5M", "\u0661M"]),
    "verify_alg": (["sha1", "crc32c", "sha256", "md5", "a" * 63], ["sha1; x", "hmac(sha1)", "a" * 64, "1sha"]),
    "drbd_version": ([9, 8], [7, 10]),
    "resync_snapshot": (["20%", "", "2G", "100%", "1%", "512MiB", "4M"],
                        ["0%", "101%", "3M", "20%\"", "x", "\u00b2G"]),
    "migration_limit": ([1, 2, 1000], [0, -1, 10 ** 9]),
    "stickiness": ([100, 0, -5, 1000000, -1000000], [10 ** 7]),
    "migration_transport": (["ssh -o BatchMode=yes", "xenha-sim-ssh", PRINTABLE_BUT_QUOTES + '"\\'],
                            ["", "ssh\nx", "ssh\u2028x"]),
    "xen_config_dir": (["/etc/xen", "/srv/xen-configs", "/", "/a+b/_c.d-e"],
                       ["etc/xen", "/etc/../xen", "/etc/xen/", "/a b"]),
    "drbd_config_dir": (["/etc/drbd.d"], ["/etc//drbd.d", "drbd.d"]),
    "handler_dir": (["/usr/local/sbin", "/usr/sbin", "/", "/opt/xenha+1/s_b.in"],
                    ["/usr/sbin; id", "/usr/s\"bin", "sbin", "/x/.."]),
}
VM_FIELDS = {
    "memory": ([256, 32, 4096, 16 << 20], [31, 0, 1 << 40, "256"]),
    "disk_size": (["1G", "4M", "512MiB", 8 << 30, "1024T", "4194304"], ["3M", "1025T", "x", " 1G", 0, "\u0663G"]),
    "kernel": (["/boot/vmlinuz", "/boot/vmlinuz-6.1+xen", "/" + "k" * 200], ["vmlinuz", "/boot/a b", "/k'", "/k\""]),
    "vcpus": ([1, 2, 512], [0, 513]),
    "extra": (["root=/dev/xvda ro console=hvc0", "", PRINTABLE_BUT_QUOTES], ['a"b', "a\\b", "a\nb", "\u00e9"]),
    "network": (["xenbr0", "br-lan.10", "x" * 15, "_b.r-0"], ["br0,script=x", "br 0", "x" * 16, "br'", "-br"]),
    "drbd_resource": (["res-a", "r.b", "R_1"], ["12", "r b", "r{", "-r", "r;"]),
    "preferred_node": (["mk1", "mk2"], ["zz", "MK1"]),
}
NODE_FIELDS = {
    "name": (["mk1", "mk2"], ["1", "a_b", "a.b", "-a", "\u0430", "n1\n"]),
    "replication_address": (["10.9.9.9", "fd00::9"], ["::", "fe80::1%eth0", "x", "10.0.0.01", "224.0.0.1"]),
    "migration_address": (["mig.example.org", "10.2.0.1", "fd01::9", "a-1.b2.C3.example", "x" * 63],
                          ["a b", "-x", "a..b", "x;y", "1.2.3.999"]),
}
V4 = ["10.0.0.1", "10.0.0.2", "192.168.7.20", "127.0.0.1", "255.255.255.254"]
V6 = ["fd00::1", "fd00::2", "2001:db8::7", "FD00:0:0::3", "::ffff:10.0.0.1", "fe80::1"]
NODE_NAMES = [("mk1", "mk2"), ("n-1", "N2"), ("a" * 63, "b")]


@st.composite
def good_clusters(draw, max_vms=3):
    """Descriptions every value of which is good: the loader must accept them."""
    names = draw(st.lists(GOOD_VM_NAME, min_size=1, max_size=max_vms, unique=True))
    addresses = draw(st.lists(st.sampled_from(draw(st.sampled_from([V4, V6]))), min_size=2, max_size=2, unique=True))
    node_names = draw(st.sampled_from(NODE_NAMES))
    nodes = [{"name": n, "replication_address": a} for n, a in zip(node_names, addresses)]
    if draw(st.booleans()):
        nodes[0]["migration_address"] = draw(st.sampled_from(NODE_FIELDS["migration_address"][0]))
    vms = []
    for name in names:
        entry = {"name": name, "memory": 256, "disk_size": "1G", "kernel": "/boot/vmlinuz"}
        for key in draw(st.lists(st.sampled_from(sorted(VM_FIELDS)), unique=True, max_size=3)):
            entry[key] = draw(st.sampled_from(VM_FIELDS[key][0]))
        if "preferred_node" in entry:
            entry["preferred_node"] = draw(st.sampled_from(node_names))
        if entry.get("drbd_resource"):
            entry["drbd_resource"] += f"-{name}"                 # resources are unique
        vms.append(entry)
    if draw(st.booleans()):      # explicit numbers, which allocation must work around
        vms[-1].update(drbd_minor=draw(st.sampled_from([0, 1, 2, 1048575])),
                       drbd_port=draw(st.sampled_from([7789, 7790, 65535])))
    return {"cluster": {"name": "c", "test_cluster": True},
            "defaults": {key: draw(st.sampled_from(DEFAULTS[key][0])) for key in
                         draw(st.lists(st.sampled_from(sorted(DEFAULTS)), unique=True, max_size=5))},
            "nodes": nodes, "vms": vms}


def bad(values):
    """Mostly the known-hostile values, sometimes any text."""
    listed = st.sampled_from(values)
    return st.one_of(listed, listed, listed, st.text(max_size=8))


@st.composite
def clusters(draw, faults=(1, 1, 2)):
    """A good description with as many faults as drawn from `faults`."""
    data = draw(good_clusters())
    for _ in range(draw(st.sampled_from(faults))):
        kind = draw(st.sampled_from(["defaults", "defaults", "vm", "vm", "vm", "vm-name", "node", "collide",
                                     "cluster"]))
        if kind == "defaults":
            key = draw(st.sampled_from(sorted(DEFAULTS)))
            data["defaults"][key] = draw(bad(DEFAULTS[key][1]))
        elif kind == "node":
            key = draw(st.sampled_from(sorted(NODE_FIELDS)))
            data["nodes"][draw(st.integers(0, 1))][key] = draw(bad(NODE_FIELDS[key][1]))
        elif kind == "vm":
            key = draw(st.sampled_from(sorted(VM_FIELDS)))
            draw(st.sampled_from(data["vms"]))[key] = draw(bad(VM_FIELDS[key][1]))
        elif kind == "vm-name":
            draw(st.sampled_from(data["vms"]))["name"] = draw(bad(HOSTILE_NAMES))
        elif kind == "collide":
            first, second = draw(st.sampled_from(COLLIDING))
            data["vms"][0]["name"] = first
            data["vms"].append(dict(data["vms"][0], name=second))
            data["vms"][-1].pop("drbd_resource", None)
            data["vms"][-1].pop("drbd_minor", None)
            data["vms"][-1].pop("drbd_port", None)
        else:
            data["cluster"]["name"] = draw(bad(["a b", "Domain-0", "-c"]))
    return data
