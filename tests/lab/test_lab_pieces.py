"""The lab's pieces that need no cluster: the fence agent against a stand-in power switch,
the generated corosync.conf and CIB, crm_mon parsing, path resolution inside a node,
name checks."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import threading
import xml.etree.ElementTree as ET

import pytest

from conftest import installed, need_tool
from xenha_lab.lab import fence_agent, layout
from xenha_lab.lab.backend import LabError
from xenha_lab.lab.cluster import parse_crm_mon
from xenha_lab.lab.namespace import resolve_in_root

SAMPLES = pathlib.Path(__file__).parent / "samples"


class FakeSwitch:
    """A power switch speaking the lab's protocol, recording what it was asked."""

    def __init__(self, path: str, nodes=("n1", "n2", "n3")):
        self.power = {node: "on" for node in nodes}
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                line = conn.makefile("rb").readline().decode().strip()
                self.requests.append(line)
                action, _, node = line.partition(" ")
                if action == "list":
                    answer = "OK " + " ".join(self.power)
                elif action == "monitor":
                    answer = "OK ready"
                elif node not in self.power:
                    answer = f"ERROR no node {node}"
                elif action == "status":
                    answer = f"OK {self.power[node]}"
                else:
                    self.power[node] = "off" if action == "off" else "on"
                    answer = f"OK {self.power[node]}"
                conn.sendall(answer.encode() + b"\n")

    def close(self):
        self.sock.close()


@pytest.fixture
def switch(tmp_path):
    fake = FakeSwitch(str(tmp_path / "switch.sock"))
    yield fake
    fake.close()


def agent(capsys, argv=None, stdin=None):
    rc = fence_agent.main(argv if argv is not None else [], stdin=stdin)
    out, err = capsys.readouterr()
    return rc, out, err


def test_fence_agent_actions_on_the_command_line(switch, capsys, tmp_path):
    sock = f"--switch-socket={tmp_path / 'switch.sock'}"
    assert agent(capsys, ["-o", "status", "-n", "n2", sock])[:2] == (0, "Status: ON\n")
    assert agent(capsys, ["-o", "off", "-n", "n2", sock])[:2] == (0, "Success: Powered OFF\n")
    assert agent(capsys, ["--action=status", "--plug=n2", sock])[:2] == (2, "Status: OFF\n")
    assert agent(capsys, ["-o", "on", "-n", "n2", sock])[:2] == (0, "Success: Powered ON\n")
    assert agent(capsys, ["-o", "reboot", "-n", "n3", sock])[:2] == (0, "Success: Rebooted\n")
    assert agent(capsys, ["-o", "list", sock])[:2] == (0, "n1,n1\nn2,n2\nn3,n3\n")
    assert agent(capsys, ["-o", "monitor", sock])[0] == 0
    assert switch.requests == ["status n2", "off n2", "status n2", "on n2", "reboot n3", "list", "monitor"]


def test_fence_agent_reads_stdin_as_fenced_sends_it(switch, capsys, tmp_path):
    text = (f"action=off\nport=n1\nnodename=n1\nswitch_socket={tmp_path / 'switch.sock'}\n"
            "pcmk_host_list=n1 n2 n3\n# a comment\nplug_color=blue\n")
    rc, out, err = agent(capsys, stdin=_Text(text))
    assert (rc, out) == (0, "Success: Powered OFF\n")
    assert "Ignoring unknown option 'plug_color=blue'" in err and "pcmk_host_list" not in err
    assert switch.power["n1"] == "off"


def test_fence_agent_failures_are_one_exit_code_and_a_message(switch, capsys, tmp_path):
    sock = f"--switch-socket={tmp_path / 'switch.sock'}"
    rc, _out, err = agent(capsys, ["-o", "off", "-n", "n9", sock])
    assert rc == 1 and "Failed: no node n9" in err
    rc, _out, err = agent(capsys, ["-o", "off", sock])
    assert rc == 1 and "You have to enter plug number" in err
    rc, _out, err = agent(capsys, ["-o", "off", "-n", "n1;rm -rf /", sock])
    assert rc == 1 and "not a node name" in err and switch.requests == ["off n9"]   # never sent
    rc, _out, err = agent(capsys, ["-o", "explode", "-n", "n1", sock])
    assert rc == 1 and "Unrecognised action" in err
    rc, _out, err = agent(capsys, ["-o", "status", "-n", "n1", f"--switch-socket={tmp_path / 'none.sock'}"])
    assert rc == 1 and "Unable to connect to the power switch" in err
    rc, _out, err = agent(capsys, ["--bogus"])
    assert rc == 1 and "unknown option" in err


def test_fence_agent_validate_all_and_metadata(capsys):
    assert agent(capsys, ["-o", "validate-all", "-n", "n1"])[0] == 0
    assert agent(capsys, ["-o", "validate-all", "-n", "n1", "--power-timeout=soon"])[0] == 1
    rc, out, _err = agent(capsys, ["-o", "metadata"])
    assert rc == 0
    root = ET.fromstring(out)
    assert root.get("name") == "fence_xenha_lab"
    assert {a.get("name") for a in root.iterfind("./actions/action")} >= {
        "on", "off", "reboot", "status", "list", "monitor", "metadata", "validate-all"}
    params = {p.get("name"): p for p in root.iterfind("./parameters/parameter")}
    assert params["plug"].get("obsoletes") == "port" and params["port"].get("deprecated") == "1"
    assert params["switch_socket"].find("content").get("default") == layout.NODE_SWITCH


def test_the_installed_fence_agent_answers_metadata():
    path = installed(layout.default_fence_agent())
    proc = subprocess.run([path, "-o", "metadata"], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0 and ET.fromstring(proc.stdout).get("name") == "fence_xenha_lab"
    assert not os.path.exists(os.path.join(layout.FENCE_BINDIR, layout.FENCE_AGENT))   # not on the host


class _Text:
    def __init__(self, text):
        self.text = text

    def read(self):
        return self.text


def test_corosync_conf_is_one_key_per_line_with_two_node_only_for_two(tmp_path):
    three = layout.make_spec(str(tmp_path / "lab"), ["n1", "n2", "n3"])
    text = layout.corosync_conf(three)
    assert "two_node" not in text and "token: 1000" in text and "transport: knet" in text
    assert "ring0_addr: 10.213.0.13" in text and "name: n3" in text
    assert all(line.count("{") <= 1 and not ("{" in line and ":" in line) for line in text.splitlines())
    two = layout.make_spec(str(tmp_path / "lab"), ["mk1", "mk2"])
    assert "two_node: 1" in layout.corosync_conf(two)
    assert layout.hosts_file(two).splitlines()[-2:] == ["10.213.0.11\tmk1", "10.213.0.12\tmk2"]


def test_corosync_accepts_the_generated_configuration(tmp_path):
    """`corosync -t` as node n1 would run it (it looks for its own address, so in a network
    namespace that has it); the control: a one-line block is refused."""
    need_tool("corosync")
    good = layout.corosync_conf(layout.make_spec(str(tmp_path / "lab"), ["n1", "n2"]))
    bad = good.replace("    node {\n", "    node { nodeid: 9\n", 1)
    results = []
    for name, text in (("good", good), ("bad", bad)):
        conf = tmp_path / f"{name}.conf"
        conf.write_text(text)
        proc = subprocess.run(["unshare", "--net", "sh", "-c", "ip addr add 10.213.0.11/24 dev lo && "
                               f"ip link set lo up && exec corosync -t -c {conf}"],
                              capture_output=True, text=True, timeout=30)
        results.append((proc.returncode, proc.stdout + proc.stderr))
    assert results[0][0] == 0, results[0][1]
    assert results[1][0] != 0 and "Extra characters after opening bracket" in results[1][1]


def test_seeded_cib_carries_the_lab_settings(tmp_path):
    need_tool("cibadmin")
    spec = layout.make_spec(str(tmp_path / "lab"), ["n1", "n2"])
    path = tmp_path / "cib.xml"
    layout.seed_cib(spec, str(path))
    root = ET.parse(path).getroot()
    props = {nv.get("name"): nv.get("value") for nv in root.iterfind(".//crm_config//nvpair")}
    assert props["dc-deadtime"] == "2s" and props["stonith-enabled"] == "false" and props["load-threshold"] == "2000%"
    assert props["priority-fencing-delay"] == "5s"
    device = root.find(".//primitive[@id='lab-fence']")
    assert device.get("class") == "stonith" and device.get("type") == "fence_xenha_lab"
    assert device.find(".//nvpair[@name='pcmk_host_list']").get("value") == "n1 n2"
    three = layout.make_spec(str(tmp_path / "lab"), ["n1", "n2", "n3"])
    layout.seed_cib(three, str(path))
    assert "priority-fencing-delay" not in path.read_text()


def test_lab_names_and_addresses_are_checked(tmp_path):
    with pytest.raises(LabError, match="node name 'N1'"):
        layout.make_spec(str(tmp_path), ["N1", "n2"])
    with pytest.raises(LabError, match="repeat"):
        layout.make_spec(str(tmp_path), ["n1", "n1"])
    with pytest.raises(LabError, match="too long for a unix socket"):
        layout.make_spec("/" + "x" * 120, ["n1", "n2"])
    with pytest.raises(LabError, match="inside the lab network"):
        layout.make_spec(str(tmp_path), ["n1", "n2"], extra_addresses={"n1": ["10.213.0.99"]})
    with pytest.raises(LabError, match="not an IP address"):
        layout.make_spec(str(tmp_path), ["n1", "n2"], extra_addresses={"n1": ["mk1"]})
    spec = layout.make_spec(str(tmp_path), ["mk1", "mk2"], "howto", extra_addresses={"mk1": ["10.0.0.1"]})
    assert spec.node("mk1").extra_addresses == ("10.0.0.1/24",) and spec.node("mk2").address == "10.213.0.12"
    assert layout.LabSpec.from_json(spec.to_json()) == spec


def test_crm_mon_parsing():
    status = parse_crm_mon((SAMPLES / "crm_mon_two_nodes.xml").read_text(), "n1")
    assert status.dc == "n2" and status.quorum
    assert status.online() == ["n1", "n2"] and status.nodes["n2"].dc
    assert status.located("d1") == ("n1",) and status.located("nothing") == ()
    assert status.resources["lab-fence"].agent == "stonith:fence_xenha_lab"
    assert status.fencing == ({"action": "reboot", "target": "n2", "client": "pacemaker-controld.21", "origin": "n1",
                               "status": "success", "delegate": "n1", "completed": "2026-12-04 18:39:52Z"},)


def test_paths_inside_a_node_never_escape_to_the_host(tmp_path):
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "run" / "Dummy-d1.state").write_text("")
    (root / "var").mkdir()
    os.symlink("/run", root / "var" / "run")            # absolute: the node's /run, not the host's
    os.symlink("../run/Dummy-d1.state", root / "var" / "rel")
    os.symlink("/loop", root / "loop")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("")
    assert resolve_in_root(str(root), "/var/run/Dummy-d1.state") == str(root / "run" / "Dummy-d1.state")
    assert resolve_in_root(str(root), "/var/rel") == str(root / "run" / "Dummy-d1.state")
    assert resolve_in_root(str(root), "/../../etc/passwd") == str(root / "etc" / "passwd")
    assert resolve_in_root(str(root), "/loop/x") is None


def test_a_lab_from_a_cluster_description(tmp_path):
    from conftest import REPO
    from xenha_lab.lab.namespace import NamespaceLab

    lab = NamespaceLab.from_description(str(tmp_path / "lab"), str(REPO / "cluster-config/examples/howto.toml"))
    assert lab.nodes == ["mk1", "mk2"] and lab.spec.cluster_name == "howto"
    assert [n.extra_addresses for n in lab.spec.nodes] == [("10.0.0.1/24",), ("10.0.0.2/24",)]
    bad = tmp_path / "bad.toml"
    bad.write_text('[cluster]\nname = "x"\n')
    with pytest.raises(LabError, match=str(bad)):
        NamespaceLab.from_description(str(tmp_path / "lab"), str(bad))
