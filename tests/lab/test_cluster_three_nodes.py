"""A real 3-node Pacemaker/Corosync cluster in namespaces, shared by the tests of this
module (in order): isolation of the nodes, the fence agent inside a node, `pcs resource
move` and standby as live migrations of ocf:pacemaker:Dummy (allow-migrate), a power cut
fenced and failed over, and a teardown that leaves nothing. The invariant "active on at
most one node, by the nodes' own account" is sampled throughout every scenario."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time

import pytest

from lab_support import lab_dir, record, require_lab, traces_of  # noqa: F401 - traces_of is a fixture
from xenha_lab.lab.scenario import AtMostOneActive, Scenario, dummy_active

D1 = dummy_active("d1")
ONE_D1 = AtMostOneActive("d1", D1)


def host_file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


# a boot service, as the simulated kernels will be (started before corosync, gone with the power)
SERVICE = ("sh", "-c", "echo $$ > /run/boot-service && exec sleep 100000")
HOST_FILES = ("/etc/hosts", "/etc/corosync/corosync.conf", "/etc/hostname", "/var/lib/pacemaker/cib/cib.xml",
              "/etc/lvm/lvm.conf")


@pytest.fixture(scope="module")
def lab(traces_of):  # noqa: F811 - the fixture imported above
    require_lab()
    from xenha_lab.lab.namespace import NamespaceLab

    before = {path: host_file_digest(path) for path in HOST_FILES}
    backend = NamespaceLab.create(lab_dir("three"), 3, lifetime_s=900, services=(SERVICE,))
    traces = traces_of(backend.lay.dir)
    try:
        timings = backend.up(timeout=120)
        record("3 nodes: supervisor start -> all online", timings["online"] - timings["cleanup"])
        record("3 nodes: supervisor start -> fencing ready", timings["ready"] - timings["cleanup"])
        backend.host_files_before = before
        yield backend
    finally:
        traces.note(backend)
        backend.down()


def started_d1(lab) -> str:
    """d1 (Dummy, allow-migrate) created if needed; the node it runs on."""
    if "d1" not in (lab.cluster.status().resources):
        lab.check("n1", ["pcs", "resource", "create", "d1", "ocf:pacemaker:Dummy", "meta", "allow-migrate=true",
                         "op", "monitor", "interval=5s"])
    return lab.cluster.wait("d1 started on one node", lambda: _only(ONE_D1.active_on(lab)), timeout=60)


def _only(nodes):
    return nodes[0] if len(nodes) == 1 else None


def log_lines(lab, node: str, needle: str) -> list[str]:
    data = lab.read_file(node, "/var/log/pacemaker/pacemaker.log") or b""
    return [line for line in data.decode(errors="replace").splitlines() if needle in line]


def test_the_cluster_is_up_with_fencing(lab):
    status = lab.cluster.status()
    assert sorted(status.online()) == ["n1", "n2", "n3"] and status.dc and status.quorum
    assert status.resources["lab-fence"].role == "Started"
    prop = lab.check("n2", ["crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--query"])
    assert "value=true" in prop.stdout
    # pcs works inside, without pcsd
    assert "Online: [ n1 n2 n3 ]" in lab.check("n3", ["pcs", "status", "nodes"]).stdout.replace("\n", " ") or \
        "Online: n1 n2 n3" in lab.check("n3", ["pcs", "status", "nodes"]).stdout


def test_each_node_is_isolated_and_the_host_untouched(lab):
    for index, node in enumerate(lab.nodes, start=1):
        assert lab.check(node, ["hostname"]).stdout.strip() == node
        addresses = lab.check(node, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout
        assert f"10.213.0.{10 + index}/24" in addresses
        init = lab.check(node, ["cat", "/proc/1/cmdline"]).stdout
        assert "xenha_lab.lab.node_init" in init         # the node's own PID namespace
        daemons = lab.check(node, ["ps", "-eo", "comm="]).stdout.split()
        assert {"corosync", "pacemakerd", "pacemaker-execd", "sleep"} <= set(daemons) and len(daemons) < 40
        service = lab.read_file(node, "/run/boot-service").decode().strip()
        assert lab.check(node, ["cat", f"/proc/{service}/comm"]).stdout.strip() == "sleep"
    # RAM, /dev/shm and /tmp are each node's own; the DRBD network directory is shared
    lab.check("n1", ["sh", "-c", "echo n1 > /run/mark && touch /dev/shm/mark /tmp/mark /run/xenha-sim/drbd-net/mark"])
    assert lab.read_file("n1", "/run/mark") == b"n1\n"
    for path in ("/run/mark", "/dev/shm/mark", "/tmp/mark"):
        assert not lab.exists("n2", path) and not os.path.exists(path), path
    assert lab.exists("n3", "/run/xenha-sim/drbd-net/mark")
    assert os.path.exists(os.path.join(lab.lay.drbd_net, "mark"))
    # persistent per-node directories the simulators use, on the node's disk only
    lab.check("n1", ["sh", "-c", "echo 1 > /var/lib/xenha-sim/disk-mark && echo x >> /etc/lvm/lvm.conf"])
    assert not lab.exists("n2", "/var/lib/xenha-sim/disk-mark") and not os.path.exists("/var/lib/xenha-sim")
    own = lab.read_file("n2", "/etc/lvm/lvm.conf")       # each node its own lvm.conf (its one disk)
    assert own.startswith(b"# the xenha lab's lvm.conf") and not own.endswith(b"x\n")
    assert "10.213.0.12\tn2" in lab.read_file("n1", "/etc/hosts").decode()
    assert {path: host_file_digest(path) for path in HOST_FILES} == lab.host_files_before
    # no lab address on the host
    host = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    assert "10.213.0." not in host and " vn1" not in host


def test_agents_get_a_clean_environment_and_the_node_tools_first(lab):
    env = lab.check("n2", ["sh", "-c", "tr '\\0' '\\n' < /proc/$(pgrep -x pacemaker-execd)/environ"]).stdout.split()
    keys = {line.split("=", 1)[0] for line in env}
    # the node's own environment: the DRBD module version the simulated kernel announces and
    # where simulated guests log their acknowledged writes
    allowed = {"PATH", "LANG", "LC_ALL", "HOME", "TERM", "HOSTNAME", "OCF_OUTPUT_FORMAT",
               "DRBD_DRIVER_VERSION_OVERRIDE", "XENHA_SIM_GUEST_IO"}
    assert {k for k in keys if not k.startswith(("PCMK_", "HA_"))} <= allowed, keys
    assert "PATH=/run/xenha-lab/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in env
    simbindir = os.environ.get("XENHA_SIMBINDIR")
    if simbindir:                                    # make test: the simulated tools come first
        assert lab.check("n2", ["sh", "-c", "command -v xl"]).stdout.strip() == "/run/xenha-lab/bin/xl"
        assert os.readlink(os.path.join(lab.lay.tools("n2"), "drbdsetup")) == os.path.join(simbindir, "drbdsetup")


def test_the_fence_agent_reaches_the_power_switch_from_a_node(lab):
    status = lab.run("n1", ["fence_xenha_lab", "-o", "status", "-n", "n2"])
    assert (status.returncode, status.stdout) == (0, "Status: ON\n")
    assert lab.check("n3", ["fence_xenha_lab", "-o", "list"]).stdout == "n1,n1\nn2,n2\nn3,n3\n"
    stdin = lab.run("n2", ["fence_xenha_lab"], input="action=status\nport=n3\nnodename=n3\n")
    assert (stdin.returncode, stdin.stdout) == (0, "Status: ON\n")
    bad = lab.run("n2", ["fence_xenha_lab", "-o", "off", "-n", "n9"])
    assert bad.returncode == 1 and "no node 'n9'" in bad.stderr
    assert lab.check("n1", ["stonith_admin", "--list", "n3"]).stdout.count("lab-fence") == 1


def test_pcs_checks_stonith_devices_against_the_fence_agent(lab):
    lab.check("n1", ["sh", "-c", "cibadmin --empty > /tmp/cib.xml"])
    created = lab.run("n1", ["pcs", "-f", "/tmp/cib.xml", "stonith", "create", "pdu", "fence_xenha_lab",
                             "pcmk_host_list=n1 n2", "op", "monitor", "interval=30s"])
    assert created.ok, created.describe()
    assert 'type="fence_xenha_lab"' in lab.read_file("n1", "/tmp/cib.xml").decode()
    wrong = lab.run("n1", ["pcs", "-f", "/tmp/cib.xml", "stonith", "create", "pdu2", "fence_xenha_lab", "colour=red"])
    assert wrong.returncode != 0 and "colour" in wrong.stderr
    described = lab.check("n2", ["pcs", "stonith", "describe", "fence_xenha_lab"]).stdout
    assert "switch_socket" in described and "plug" in described


def test_pcs_resource_move_is_a_live_migration(lab):
    holder = started_d1(lab)
    target = next(n for n in lab.nodes if n != holder)
    with Scenario(lab, "move", [ONE_D1]) as sc:
        started = time.monotonic()
        sc.pcs("resource", "move", "d1", target, timeout=90)
        sc.wait_until(f"d1 on {target}", lambda: sc.running_on("d1", D1) == target, timeout=60)
        record("3 nodes: pcs resource move (live migration), wall", time.monotonic() - started)
        sc.wait_idle()
    assert log_lines(lab, holder, "Result of migrate_to operation for d1"), "no migrate_to on the source"
    assert log_lines(lab, target, "Result of migrate_from operation for d1"), "no migrate_from on the target"
    assert not log_lines(lab, target, "Result of start operation for d1"), "d1 was restarted, not migrated"
    constraints = lab.check("n1", ["cibadmin", "--query", "--scope", "constraints"]).stdout
    assert "cli-prefer-d1" not in constraints and "cli-ban-d1" not in constraints
    assert sc.samples > 10


def test_standby_drains_by_migration_and_unstandby_brings_nothing_back(lab):
    holder = started_d1(lab)
    with Scenario(lab, "standby", [ONE_D1]) as sc:
        started = time.monotonic()
        sc.pcs("node", "standby", holder)
        new = sc.wait_until("d1 drained", lambda: sc.running_on("d1", D1, not_on=[holder]), timeout=60)
        record("3 nodes: pcs node standby -> d1 migrated", time.monotonic() - started)
        sc.wait_idle()
        sc.pcs("node", "unstandby", holder)
        sc.wait_idle()
        time.sleep(2)                                 # room for an unrequested move to show
        sc.check("d1 stayed where the drain put it", lambda: ONE_D1.active_on(lab) == [new])
    migrations = log_lines(lab, holder, "Result of migrate_to operation for d1")
    assert len(migrations) >= 1 and all(": ok" in line for line in migrations)


def test_a_power_cut_is_fenced_and_the_resource_fails_over(lab):
    holder = started_d1(lab)
    lab.check(holder, ["sh", "-c", "echo ram > /run/ram-mark && echo disk > /var/lib/xenha-sim/disk-mark"])
    with Scenario(lab, "power cut", [ONE_D1]) as sc:
        cut = time.monotonic()
        sc.power("off", holder)
        new = sc.wait_until("d1 on a survivor", lambda: sc.running_on("d1", D1, not_on=[holder]), timeout=60)
        record("3 nodes: power cut -> d1 running on a survivor", time.monotonic() - cut)
        sc.wait_until(f"{holder} back online after fencing",
                      lambda: set(lab.nodes) <= set((sc.cluster.status() or _Nobody()).online()), timeout=90)
        record("3 nodes: power cut -> fenced node online again", time.monotonic() - cut)
    events = lab.events()
    cut = [e for e in events if e["node"] == holder and e["what"] == "off" and e["by"] == "operator"]
    assert cut and cut[-1]["hooks"] == ["drbd", "lvm", "xen"]   # each simulator was told the node lost power
    fenced = [e for e in events if e["node"] == holder and e["by"].startswith("fence-agent@")]
    assert [e["what"] for e in fenced] == ["off", "on"], fenced    # a reboot: off (already), then on
    assert fenced[0]["by"] != f"fence-agent@{holder}"              # a survivor asked
    history = lab.cluster.status().fencing
    assert any(e["target"] == holder and e["status"] == "success" and e["action"] == "reboot" for e in history)
    assert ONE_D1.active_on(lab) == [new]
    # the rebooted node lost its RAM, kept its disk, and started its boot service again
    assert not lab.exists(holder, "/run/ram-mark") and lab.read_file(holder, "/var/lib/xenha-sim/disk-mark") == b"disk\n"
    assert lab.exists(holder, "/run/boot-service")


class _Nobody:
    def online(self):
        return []


def test_teardown_leaves_nothing(lab, traces_of):  # noqa: F811
    traces = traces_of(lab.lay.dir)
    traces.note(lab)
    timings = lab.down()
    record("3 nodes: teardown", timings["down"])
    assert traces.leftovers() == []
