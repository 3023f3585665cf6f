"""ocf:xenha:drbd-resource on the simulated DRBD kernel behind the real drbdadm.

Two nodes, mk1 and mk2, each in its own network namespace (real `drbdadm up` checks the
node's address), loop-device backing disks, a fence-peer handler that reports the peer
fenced (exit 7). Promotion scores are written by the real crm_attribute into an offline
CIB (CIB_file) holding both nodes.
"""

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import installed, need_tool
from xenha.ocf import codes
from xenha_lab.harness import run_agent
from xenha_lab.paths import default_agent

CLONE_META = {"clone_max": "2", "clone_node_max": "1", "promotable": "true", "promoted_max": "2",
              "promoted_node_max": "1", "notify": "true", "interleave": "true"}
NODES = {"mk1": "10.99.0.1", "mk2": "10.99.0.2"}


class Cluster:
    def __init__(self, world, tmp_path):
        self.world = world
        self.agent = installed(default_agent("drbd-resource"))
        self.cib = str(tmp_path / "cib.xml")
        env = dict(os.environ, CIB_file=self.cib)
        with open(self.cib, "w") as handle:
            handle.write(subprocess.run(["cibadmin", "--empty"], capture_output=True, text=True, check=True).stdout)
        subprocess.run(["cibadmin", "-C", "-o", "resources", "-X",
                        '<clone id="drbd_r0-clone"><primitive id="drbd_r0" class="ocf" provider="xenha" '
                        'type="drbd-resource"/><meta_attributes id="drbd_r0-clone-meta"><nvpair '
                        'id="drbd_r0-clone-meta-promotable" name="promotable" value="true"/></meta_attributes>'
                        '</clone>'], env=env, check=True)
        for number, node in enumerate(NODES, start=1):
            subprocess.run(["cibadmin", "-C", "-o", "nodes", "-X", f'<node id="{number}" uname="{node}"/>'],
                           env=env, check=True)
            subprocess.run(["cibadmin", "-C", "-o", "status", "-X",
                            f'<node_state id="{number}" uname="{node}" in_ccm="true" crmd="online" join="member" '
                            f'expected="member"/>'], env=env, check=True)
        self.fence_log = tmp_path / "fence.log"
        fence = tmp_path / "fence-peer.sh"
        # exit 7: "peer fenced (STONITH)"; a test writes another code into fence.rc
        self.fence_rc = tmp_path / "fence.rc"
        self.fence_rc.write_text("7\n")
        fence.write_text(f"#!/bin/sh\necho \"fence-peer $DRBD_RESOURCE\" >> {self.fence_log}\n"
                         f"exit $(cat {self.fence_rc})\n")
        fence.chmod(0o755)
        self.config = world.write_config("r0", handlers=f'fence-peer "{fence}";')
        for node in NODES:
            world.create_md(node, "r0")
        self.rsctmp = {node: str(tmp_path / f"rsctmp-{node}") for node in NODES}

    def call(self, node, action, interval=None, meta=CLONE_META, params=None, timeout=60, extra=None,
             check_level=None):
        """The agent on `node`, inside the node's network namespace (drbdadm checks its address)."""
        netns = ["ip", "netns", "exec", self.world.netns[node]] if node in self.world.netns else []
        result = run_agent(self.world.env(node, {"CIB_file": self.cib}), node, "drbd-resource", action,
                           instance="drbd_r0", rsctmp=self.rsctmp[node],
                           params={"drbd_resource": "r0", "drbdconf": self.config, "wfc_timeout": "3", **(params or {})},
                           meta=meta, timeout_s=timeout, interval_s=interval, check_level=check_level,
                           extra=extra, agent_path=self.agent, prefix=netns)
        return result.rc, result.exit_reason, result.stderr

    def score(self, node):
        result = subprocess.run(["crm_attribute", "-N", node, "-n", "master-drbd_r0", "-l", "reboot", "-G", "-q"],
                                env=dict(os.environ, CIB_file=self.cib), capture_output=True, text=True)
        return int(result.stdout) if result.returncode == 0 else None


@pytest.fixture
def cluster(tmp_path):
    need_tool("drbdadm")
    need_tool("cibadmin")
    from xenha_lab.sim.drbd.world import DrbdWorld
    world = DrbdWorld(tmp_path / "drbd", NODES, resync_rate_kib=64 * 1024)
    try:
        yield Cluster(world, tmp_path)
    finally:
        world.cleanup()


def start_both(cluster, **kw):
    """Both instances at once, as Pacemaker starts a clone's instances (not ordered): each
    start waits up to wfc_timeout for its peer, so one after the other the first waits in vain."""
    with ThreadPoolExecutor(len(NODES)) as pool:
        results = dict(zip(NODES, pool.map(lambda node: cluster.call(node, "start", **kw), NODES)))
    for node, (code, reason, _stderr) in results.items():
        assert code == codes.SUCCESS, f"start on {node}: {reason}"


def start_both_and_sync(cluster):
    start_both(cluster)
    # The very first sync needs an operator decision (which side is the source): as after
    # `drbdadm create-md` on a new pair.
    cluster.world.drbdadm("mk1", "primary", "--force", "r0", check=True)
    assert cluster.world.wait_sync("r0")
    cluster.world.drbdadm("mk1", "secondary", "r0", check=True)


def test_probe_start_monitor_stop(cluster):
    assert cluster.call("mk1", "monitor")[0] == codes.NOT_RUNNING
    start_both_and_sync(cluster)
    for node in NODES:
        assert cluster.call(node, "monitor", interval=31)[0] == codes.SUCCESS
        assert cluster.score(node) == 10000
    assert cluster.call("mk1", "start")[0] == codes.SUCCESS, "start is idempotent"
    assert cluster.call("mk1", "stop")[0] == codes.SUCCESS
    assert cluster.call("mk1", "monitor")[0] == codes.NOT_RUNNING
    assert cluster.score("mk1") is None, "a stopped instance has no promotion score"
    assert cluster.call("mk1", "stop")[0] == codes.SUCCESS, "stop is idempotent"
    code, reason, _ = cluster.call("mk2", "monitor", interval=31)
    assert code == codes.DEGRADED and "not connected" in reason
    assert cluster.score("mk2") == 1000, "UpToDate with the peer unknown"


def test_start_with_the_peer_missing_is_not_an_error(cluster):
    code, _reason, stderr = cluster.call("mk1", "start")
    assert code == codes.SUCCESS
    code, reason, _ = cluster.call("mk1", "monitor", interval=31)
    assert code == codes.DEGRADED and "not connected" in reason
    assert cluster.score("mk1") is None, "fresh metadata: Inconsistent, never promoted"


def test_dual_primary_for_live_migration_and_demote(cluster):
    start_both_and_sync(cluster)
    assert cluster.call("mk1", "promote")[0] == codes.SUCCESS
    assert cluster.call("mk1", "monitor", interval=29)[0] == codes.RUNNING_PROMOTED
    assert cluster.call("mk1", "promote")[0] == codes.SUCCESS, "promote is idempotent"
    assert cluster.call("mk2", "promote")[0] == codes.SUCCESS, "second Primary: connected, both UpToDate"
    assert cluster.world.role("mk2", "r0") == "Primary"
    assert cluster.call("mk1", "demote")[0] == codes.SUCCESS
    assert cluster.call("mk1", "demote")[0] == codes.SUCCESS, "demote is idempotent"
    assert cluster.call("mk1", "monitor", interval=31)[0] == codes.SUCCESS
    assert cluster.call("mk2", "monitor", interval=29)[0] == codes.RUNNING_PROMOTED


def test_promote_refused_without_up_to_date_data(cluster):
    start_both(cluster)
    code, reason, _ = cluster.call("mk1", "promote")
    assert code == codes.ERR_GENERIC and "without UpToDate data" in reason


def test_no_second_primary_while_the_other_may_still_write(cluster):
    """Disconnected from a Primary, the peer's state is unknown: DRBD asks the fence-peer
    handler; when it cannot fence (exit 1), promotion must fail, with DRBD's reason."""
    start_both_and_sync(cluster)
    assert cluster.call("mk1", "promote")[0] == codes.SUCCESS
    cluster.world.cut("mk1", "mk2")
    cluster.fence_rc.write_text("1\n")
    code, reason, _ = cluster.call("mk2", "promote", timeout=5)   # it retries until its deadline
    assert code == codes.ERR_GENERIC, reason
    assert cluster.world.role("mk2", "r0") == "Secondary"
    assert "fence-peer r0" in cluster.fence_log.read_text()


def test_peer_loss_while_primary_calls_fence_peer_and_is_reported(cluster):
    start_both_and_sync(cluster)
    assert cluster.call("mk1", "promote")[0] == codes.SUCCESS
    cluster.world.cut("mk1", "mk2")
    assert cluster.world.write("mk1", "r0", 3, b"after the cut", wait=10) == "ack"
    cluster.world.wait_for(lambda: cluster.fence_log.exists(), timeout=10)
    assert "fence-peer r0" in cluster.fence_log.read_text()
    code, reason, _ = cluster.call("mk1", "monitor", interval=29)
    assert code == codes.DEGRADED_PROMOTED and "not connected" in reason
    assert cluster.score("mk1") == 1000
    cluster.world.heal("mk1", "mk2")
    assert cluster.world.wait_sync("r0")
    assert cluster.call("mk1", "monitor", interval=29)[0] == codes.RUNNING_PROMOTED
    assert cluster.world.disk_blocks("mk2", "r0")[3].startswith(b"after the cut")


def test_resync_is_degraded_with_progress(cluster):
    start_both_and_sync(cluster)
    assert cluster.call("mk2", "stop")[0] == codes.SUCCESS
    assert cluster.call("mk1", "promote")[0] == codes.SUCCESS
    for block in range(0, 400):
        cluster.world.write("mk1", "r0", block, b"z" * 4096)
    cluster.world.rate = 512  # slow resync so that it can be seen
    assert cluster.call("mk2", "start")[0] == codes.SUCCESS
    code, reason, _ = cluster.call("mk2", "monitor", interval=31)
    assert code == codes.DEGRADED and ("resync" in reason or "Inconsistent" in reason), reason
    assert cluster.score("mk2") is None, "a sync target is never promoted"
    code, reason, _ = cluster.call("mk2", "promote")
    assert code == codes.ERR_GENERIC and "without UpToDate data" in reason


def test_split_brain_is_an_error(cluster):
    start_both_and_sync(cluster)
    cluster.world.cut("mk1", "mk2")
    for node in NODES:
        cluster.world.drbdadm(node, "primary", "--force", "r0")
        cluster.world.write(node, "r0", 1, node.encode() * 10, wait=10)
        cluster.world.drbdadm(node, "secondary", "r0")
    cluster.world.heal("mk1", "mk2")
    cluster.world.wait_for(lambda: "StandAlone" in str(cluster.world.events("mk1", "r0")), timeout=10)
    code, reason, _ = cluster.call("mk1", "monitor", interval=31)
    assert code == codes.ERR_GENERIC and "StandAlone" in reason and "split brain" in reason


def test_clone_meta_is_validated(cluster):
    bad = dict(CLONE_META, promoted_max="3")
    code, reason, _ = cluster.call("mk1", "validate-all", meta=bad)
    assert code == codes.ERR_CONFIGURED and "promoted-max=3" in reason
    no_notify = dict(CLONE_META, notify="false")
    code, reason, _ = cluster.call("mk1", "start", meta=no_notify)
    assert code == codes.ERR_CONFIGURED and "notify" in reason
    assert cluster.call("mk1", "validate-all")[0] == codes.SUCCESS


def test_dual_primary_needs_allow_two_primaries(cluster, tmp_path):
    config = cluster.world.write_config("r0", net="protocol C; fencing resource-and-stonith;",
                                        disks={n: cluster.world.backing(n, "r0") for n in NODES})
    code, reason, _ = cluster.call("mk1", "start", params={"drbdconf": config})
    assert code == codes.ERR_CONFIGURED and "allow-two-primaries" in reason
    single = dict(CLONE_META, promoted_max="1")
    assert cluster.call("mk1", "validate-all", meta=single, params={"drbdconf": config},
                        check_level=10)[0] == codes.SUCCESS


def test_unknown_resource_and_missing_module(cluster):
    code, reason, _ = cluster.call("mk1", "start", params={"drbd_resource": "nosuch"})
    assert code == codes.ERR_INSTALLED and "nosuch" in reason
    assert cluster.call("mk1", "monitor", params={"drbd_resource": "nosuch"})[0] == codes.NOT_RUNNING
    absent = {"XENHA_SIM_DRBD_MODULE": "absent"}
    assert cluster.call("mk1", "monitor", extra=absent)[0] == codes.NOT_RUNNING
    assert cluster.call("mk1", "monitor", interval=31, extra=absent)[0] == codes.ERR_GENERIC
    assert cluster.call("mk1", "stop", extra=absent)[0] == codes.SUCCESS
    code, reason, _ = cluster.call("mk1", "start", extra=absent)
    assert code == codes.ERR_INSTALLED and "module" in reason


def test_stop_with_a_broken_configuration_still_takes_it_down(cluster, tmp_path):
    start_both_and_sync(cluster)
    assert cluster.call("mk1", "stop", params={"drbdconf": str(tmp_path / "gone.conf")})[0] == codes.SUCCESS
    assert cluster.world.events("mk1", "r0") == {} or "r0" not in str(cluster.world.events("mk1", "r0"))


def test_drbd_84_path(cluster, tmp_path):
    """The same agent on DRBD 8.4 (drbdadm re-executes drbdadm-84, which drives
    drbdsetup-84): state from drbdadm role/cstate/dstate, 8.4 configuration syntax."""
    world = cluster.world
    disks = {n: world.make_disk(n) for n in NODES}
    hosts = "".join(f"    on {n} {{\n        device /dev/drbd5 minor 5;\n        disk {disks[n]};\n"
                    f"        meta-disk internal;\n        address ipv4 {ip}:7795;\n    }}\n"
                    for n, ip in NODES.items())
    config = tmp_path / "r84.conf"
    config.write_text("global { usage-count no; }\nresource r84 {\n" + hosts +
                      "    net { protocol C; allow-two-primaries yes; }\n"
                      "    disk { fencing resource-only; }\n}\n")
    old84 = {"DRBD_DRIVER_VERSION_OVERRIDE": "8.4.11"}
    params = {"drbd_resource": "r84", "drbdconf": str(config)}
    for node in NODES:   # the kernel's helper (drbdadm) reads this configuration
        world.set_usermode_helper(node, str(config))
    for node in NODES:
        world.drbdadm(node, "create-md", "--force", "r84", config=str(config), env=old84, check=True)
    start_both(cluster, params=params, extra=old84)
    world.drbdadm("mk1", "primary", "--force", "r84", config=str(config), env=old84, check=True)
    assert world.wait_for(lambda: world.drbdadm("mk2", "dstate", "r84", config=str(config), env=old84)
                          .stdout.strip() == "UpToDate/UpToDate", timeout=30)
    world.drbdadm("mk1", "secondary", "r84", config=str(config), env=old84, check=True)
    assert cluster.call("mk1", "monitor", interval=31, params=params, extra=old84)[0] == codes.SUCCESS
    assert cluster.call("mk1", "promote", params=params, extra=old84)[0] == codes.SUCCESS
    assert cluster.call("mk2", "promote", params=params, extra=old84)[0] == codes.SUCCESS
    assert cluster.call("mk1", "monitor", interval=29, params=params, extra=old84)[0] == codes.RUNNING_PROMOTED
    assert cluster.call("mk1", "demote", params=params, extra=old84)[0] == codes.SUCCESS
    for node in NODES:
        assert cluster.call(node, "stop", params=params, extra=old84)[0] == codes.SUCCESS
        assert cluster.call(node, "monitor", params=params, extra=old84)[0] == codes.NOT_RUNNING


def test_a_stale_fencing_constraint_is_reported_not_kept_silently(cluster):
    """drbd-utils#11: the unfence handler failed and left the constraint that forbids
    promotion; once everything is UpToDate and connected again, the monitor says so."""
    start_both_and_sync(cluster)
    cluster.world.cut("mk1", "mk2")
    code, _reason, _ = cluster.call("mk2", "monitor", interval=31)
    assert code == codes.DEGRADED                      # the peer is gone: watch for fencing
    constraint = ('<rsc_location rsc="drbd_r0-clone" id="drbd-fence-by-handler-r0-drbd_r0-clone">'
                  '<rule role="Promoted" score="-INFINITY" id="drbd-fence-by-handler-r0-rule">'
                  '<expression attribute="#uname" operation="ne" value="mk1" id="drbd-fence-by-handler-r0-expr"/>'
                  '</rule></rsc_location>')
    subprocess.run(["cibadmin", "--create", "-o", "constraints", "-X", constraint],
                   env=dict(os.environ, CIB_file=cluster.cib), check=True)
    cluster.world.heal("mk1", "mk2")
    assert cluster.world.wait_sync("r0")
    code, reason, _ = cluster.call("mk2", "monitor", interval=31)
    assert code == codes.DEGRADED and "stale fencing constraint drbd-fence-by-handler-r0-drbd_r0-clone" in reason
    subprocess.run(["cibadmin", "--delete", "-o", "constraints", "-X", constraint],
                   env=dict(os.environ, CIB_file=cluster.cib), check=True)
    assert cluster.call("mk2", "monitor", interval=31)[0] == codes.SUCCESS
    # and healthy monitors stop asking the CIB
    assert cluster.call("mk2", "monitor", interval=31)[0] == codes.SUCCESS


def test_a_refusal_no_retry_can_change_ends_at_once_with_drbds_words(cluster):
    """issue 9 §9, resource-agents' drbd.linbit case: single-primary, the peer is Primary.
    DRBD says "(-1) Multiple primaries not allowed by config" (exit 11): no retry changes
    that, so promote ends at once, with DRBD's words, not drbdadm's wrapper line."""
    import time
    world = cluster.world
    config = world.write_config("r0", net="protocol C;", disks={n: world.backing(n, "r0") for n in NODES})
    single = dict(CLONE_META, promoted_max="1")
    params = {"drbdconf": config}
    for node in NODES:
        assert cluster.call(node, "start", meta=single, params=params)[0] == codes.SUCCESS
    world.drbdadm("mk1", "primary", "--force", "r0", config=config, check=True)
    assert world.wait_sync("r0")
    started = time.monotonic()
    code, reason, stderr = cluster.call("mk2", "promote", meta=single, params=params, timeout=20)
    assert code == codes.ERR_GENERIC
    assert "(-1) Multiple primaries not allowed by config" in reason, reason
    assert "terminated with exit code" not in reason
    assert time.monotonic() - started < 5, "promote retried a refusal no retry can change"
    assert stderr.count("retrying") == 0
    assert world.role("mk2", "r0") == "Secondary"


def test_exit_reasons_of_drbdadm_failures_say_drbds_words(cluster, tmp_path):
    """up, demote and down failures: the reason is DRBD's explanation, never drbdadm's
    "Command 'drbdsetup ...' terminated with exit code N"."""
    world = cluster.world
    config = tmp_path / "broken.res"
    config.write_text(open(cluster.config).read().replace(world.backing("mk1", "r0"), str(tmp_path / "no-such-disk")))
    code, reason, _ = cluster.call("mk1", "start", params={"drbdconf": str(config)})
    assert code == codes.ERR_GENERIC and "terminated with exit code" not in reason, reason
    assert "no-such-disk) failed" in reason, reason   # drbdmeta's words
    world.drbdadm("mk1", "down", "r0", config=str(config))
    start_both_and_sync(cluster)
    assert cluster.call("mk1", "promote")[0] == codes.SUCCESS
    world.open_device("mk1", "r0")                       # the VM still holds it open
    code, reason, _ = cluster.call("mk1", "demote", timeout=4)
    assert code == codes.ERR_GENERIC and "(-12) Device is held open by someone" in reason, reason
    code, reason, _ = cluster.call("mk1", "stop", timeout=4)
    assert code == codes.ERR_GENERIC and "(-12) Device is held open by someone" in reason, reason
    assert "terminated with exit code" not in reason
