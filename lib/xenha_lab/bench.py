"""`make bench`: what a monitor costs, ours against the anchor, measured in one run.

Both agents drive the same simulated `xl` (one `xl list` per monitor for each), on one
simulated host holding the running domain `shaolin`. Each case runs the installed
executable the way pacemaker-execd does; wall time is measured around the process and
CPU time from the child's rusage (os.wait4). Figures are medians over many runs, and
the result is reported as ratios — these machines are noisy, so nothing here asserts.

The floor is what no agent can go below: starting the interpreter (`python3 -IS -c
pass`) plus the one `xl list` call the monitor needs.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time

from xenha_lab.harness import agent_env
from xenha_lab.paths import default_agent
from xenha_lab.sim.xen.hosts import SimHosts

ANCHOR = "/usr/lib/ocf/resource.d/heartbeat/Xen"
CONFIG = "name = 'shaolin'\nkernel = '/boot/vmlinuz-xen'\nmemory = 512\ndisk = [ 'drbd:vm_shaolin,hda1,w' ]\n"
RUNS = int(os.environ.get("XENHA_BENCH_RUNS", "60"))


def run_once(argv, env, actions):
    started = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    _pid, status, usage = os.wait4(pid, 0)
    wall = (time.perf_counter() - started) * 1000
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, os.waitstatus_to_exitcode(status)


def measure(*commands, runs: int = RUNS):
    """Median wall and CPU milliseconds and the exit codes seen, per (argv, env).

    Several commands are measured interleaved (A B A B ...), so that a slow spell of the
    machine hits all of them alike.
    """
    samples = [([], [], set()) for _ in commands]
    devnull = os.open(os.devnull, os.O_RDWR)
    actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
    for _ in range(runs):
        for (argv, env), (walls, cpus, codes) in zip(commands, samples):
            wall, cpu, code = run_once(argv, env, actions)
            walls.append(wall)
            cpus.append(cpu)
            codes.add(code)
    os.close(devnull)
    results = [(statistics.median(w), statistics.median(c), k) for w, c, k in samples]
    return results if len(results) > 1 else results[0]


def xen_env(hosts: SimHosts, config: str, interval_ms: int, anchor: bool) -> dict:
    """The same operation for ours and the anchor (whose config parameter is `xmfile`)."""
    return agent_env(hosts.env("mk1"), agent="Xen" if anchor else "xen-domain",
                     provider="heartbeat" if anchor else "xenha", instance="shaolin", rsctmp=hosts.rsctmp("mk1"),
                     node="mk1", timeout_s=30, interval_s=interval_ms / 1000,
                     params={"name": "shaolin", "xmfile" if anchor else "config": config})


def synthetic_cluster(vm_count: int) -> dict:
    """A 3-node description with `vm_count` VMs spread over the three node pairs."""
    pairs = [("n1", "n2"), ("n2", "n3"), ("n1", "n3")]
    return {
        "cluster": {"name": "scale", "test_cluster": True},
        "nodes": [{"name": f"n{i}", "replication_address": f"10.1.0.{i}"} for i in (1, 2, 3)],
        "vms": [{"name": f"vm{i:03d}", "memory": 256, "kernel": "/boot/vmlinuz", "disk_size": "1G",
                 "replicas": list(pairs[i % 3]), "preferred_node": pairs[i % 3][i % 2]} for i in range(vm_count)],
    }


def scale_report(sizes=(10, 100, 500)) -> None:
    """Rendering and Pacemaker's scheduler (crm_simulate computing the first transition)
    for growing clusters: the growth per VM should stay flat (linear)."""
    from xenha.cluster import allocation, description
    from xenha.render import files
    from xenha.tools import runner

    print("\nrendering + scheduling, 3 nodes (crm_simulate computes the first transition; no execution)")
    print(f"{'VMs':>5} {'render s':>9} {'schedule s':>11} {'ms per VM':>10} {'actions':>8}")
    workdir = tempfile.mkdtemp(prefix="xenha-scale-")
    try:
        for count in sizes:
            started = time.perf_counter()
            desc = description.from_data(synthetic_cluster(count), "scale.toml")
            slots, _added = allocation.allocate(desc, {})
            rendered = files.render_all(desc, slots)
            render_s = time.perf_counter() - started
            cib = os.path.join(workdir, f"cib-{count}.xml")
            with open(cib, "w", encoding="utf-8") as handle:
                handle.write(rendered["pacemaker/cib.xml"])
            result = runner.run(["crm_simulate", "-x", cib, "-R", "-q", "1", "-u", "n1", "-u", "n2", "-u", "n3"], 1800)
            if not result.ok:
                print(f"{count:>5} crm_simulate failed: {result.describe()}")
                continue
            schedule_s = result.duration
            actions = sum(1 for line in result.stdout.splitlines() if line.strip().startswith("* Start"))
            print(f"{count:>5} {render_s:9.3f} {schedule_s:11.2f} {1000 * (render_s + schedule_s) / count:10.1f} "
                  f"{actions:>8}")
    finally:
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)


LINBIT_DRBD = "/usr/lib/ocf/resource.d/linbit/drbd"
LVM_ACTIVATE = "/usr/lib/ocf/resource.d/heartbeat/LVM-activate"


def offline_cib(path: str, nodes) -> None:
    from xenha.tools import runner

    empty = runner.run(["cibadmin", "--empty"], 30).stdout
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(empty)
    env = dict(os.environ, CIB_file=path)
    for number, node in enumerate(nodes, start=1):
        runner.run(["cibadmin", "-C", "-o", "nodes", "-X", f'<node id="{number}" uname="{node}"/>'], 30, env=env)
        runner.run(["cibadmin", "-C", "-o", "status", "-X",
                    f'<node_state id="{number}" uname="{node}" in_ccm="true" crmd="online" join="member" '
                    'expected="member"/>'], 30, env=env)


def print_pairs(title: str, rows) -> None:
    print(f"\n{title}")
    print(f"{'case':34} {'xenha wall/cpu ms':>18} {'anchor wall/cpu ms':>19} {'ratio wall':>11} {'ratio cpu':>10}  rc")
    for name, mine, theirs in rows:
        print(f"{name:34} {mine[0]:8.1f} / {mine[1]:5.1f}   {theirs[0]:8.1f} / {theirs[1]:5.1f}  "
              f"{mine[0] / theirs[0]:10.2f}x {mine[1] / theirs[1]:9.2f}x  {sorted(mine[2])}/{sorted(theirs[2])}")


def drbd_report() -> None:
    """ocf:xenha:drbd-resource vs ocf:linbit:drbd on the simulated DRBD (same resource)."""
    from xenha_lab.sim.drbd.world import DrbdWorld

    if not os.path.exists(LINBIT_DRBD):
        print(f"\n(skipped DRBD: {LINBIT_DRBD} not installed)")
        return
    workdir = tempfile.mkdtemp(prefix="xenha-bench-drbd-")
    world = DrbdWorld(os.path.join(workdir, "drbd"), {"mk1": "10.99.0.1", "mk2": "10.99.0.2"},
                      resync_rate_kib=64 * 1024)
    rows = []
    try:
        config = world.write_config("r0")
        world.up_all("r0")
        world.drbdadm("mk1", "primary", "--force", "r0", check=True)
        world.wait_sync("r0")
        meta = {"clone_max": "2", "clone_node_max": "1", "promoted_max": "2", "promoted_node_max": "1",
                "master_max": "2", "master_node_max": "1", "notify": "true", "promotable": "true"}
        # Both agents see a loaded DRBD 9 module (drbd-utils' own override) and a CIB to
        # write promotion scores into (an offline CIB_file with both nodes' state).
        cib = os.path.join(workdir, "cib.xml")
        offline_cib(cib, ["mk1", "mk2"])
        base = world.env("mk2", {"CIB_file": cib, "DRBD_DRIVER_VERSION_OVERRIDE": "9.2.2"})

        def env(agent, provider, interval_s):
            return agent_env(base, agent=agent, provider=provider, instance="drbd_r0",
                             rsctmp=os.path.join(workdir, "rsctmp"), node="mk2", timeout_s=30, interval_s=interval_s,
                             params={"drbd_resource": "r0", "drbdconf": config}, meta=meta)
        ours, theirs = env("drbd-resource", "xenha", 31), env("drbd", "linbit", 31)
        mine = default_agent("drbd-resource")
        run_once([mine, "monitor"], ours, [])  # the first monitor writes the score; later ones don't
        rows.append(("monitor, Secondary, healthy", *measure(([mine, "monitor"], ours), ([LINBIT_DRBD, "monitor"],
                                                                                         theirs))))
        world.drbdadm("mk2", "down", "r0", check=True)
        probe_ours, probe_theirs = env("drbd-resource", "xenha", 0), env("drbd", "linbit", 0)
        rows.append(("probe, not configured", *measure(([mine, "monitor"], probe_ours),
                                                       ([LINBIT_DRBD, "monitor"], probe_theirs))))
    finally:
        world.cleanup()
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)
    print_pairs("ocf:xenha:drbd-resource vs ocf:linbit:drbd (drbd-utils 9.22) on the simulated DRBD kernel", rows)


def lvm_report() -> None:
    """ocf:xenha:lvm-volume vs ocf:heartbeat:LVM-activate, monitor of an active LV."""
    from xenha_lab.sim.lvm.world import LvmWorld

    if not os.path.exists(LVM_ACTIVATE):
        print(f"\n(skipped LVM: {LVM_ACTIVATE} not installed)")
        return
    workdir = tempfile.mkdtemp(prefix="xenha-bench-lvm-")
    world = LvmWorld(os.path.join(workdir, "lvm"))
    rows = []
    try:
        world.add_node("mk1")
        vg = world.name("vg0")
        world.create_vg("mk1", vg, world.add_pv("disk", "256M", ["mk1"]))
        world.create_lv("mk1", vg, "vm_shaolin", "32M", activate=True)

        def env(anchor, interval_s):
            return agent_env(world.env("mk1"), agent="LVM-activate" if anchor else "lvm-volume",
                             provider="heartbeat" if anchor else "xenha", instance="lv_shaolin",
                             rsctmp=os.path.join(workdir, "rsctmp"), node="mk1", timeout_s=30, interval_s=interval_s,
                             params={"vgname": vg, "lvname": "vm_shaolin", "vg_access_mode": "system_id"} if anchor
                             else {"vg": vg, "lvs": "vm_shaolin"})
        ours, theirs = env(False, 10), env(True, 30)
        mine = default_agent("lvm-volume")
        rows.append(("monitor, LV active", *measure(([mine, "monitor"], ours), ([LVM_ACTIVATE, "monitor"], theirs))))
        world.check("mk1", ["lvchange", "-an", f"{vg}/vm_shaolin"])
        rows.append(("probe, LV inactive", *measure(([mine, "monitor"], env(False, 0)),
                                                    ([LVM_ACTIVATE, "monitor"], env(True, 0)))))
    finally:
        world.cleanup()
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)
    print_pairs("ocf:xenha:lvm-volume vs ocf:heartbeat:LVM-activate (resource-agents 4.12), depth 0", rows)


def main() -> int:
    ours = default_agent("xen-domain")
    for path in (ours, ANCHOR):
        if not os.path.exists(path):
            print(f"bench: {path} is not installed (run `make bench`)", file=sys.stderr)
            return 1
    hosts = SimHosts(tempfile.mkdtemp(prefix="xenha-bench-"), ["mk1"])
    config = hosts.write_file("shaolin.cfg", CONFIG)
    rows = []
    try:
        xl = os.path.join(hosts.simbindir, "xl")
        floor_env = hosts.env("mk1")
        interp, xl_list = measure((["/usr/bin/python3", "-IS", "-c", "pass"], floor_env), ([xl, "list"], floor_env))
        rows.append(("floor: python3 -IS -c pass", interp, None))
        rows.append(("floor: one simulated `xl list`", xl_list, None))
        for state in ("stopped", "running"):
            if state == "running":
                started = hosts.run_agent("mk1", "start", {"config": config}, instance="shaolin", timeout_s=30)
                if started.rc != 0:
                    print(f"bench: could not start the domain: {started.stderr}", file=sys.stderr)
                    return 1
            cases = [("probe", 0), ("monitor", 10000)] if state == "running" else [("probe", 0)]
            for action, interval in cases:
                mine, theirs = measure(([ours, "monitor"], xen_env(hosts, config, interval, anchor=False)),
                                       ([ANCHOR, "monitor"], xen_env(hosts, config, interval, anchor=True)))
                rows.append((f"{action}, domain {state}", mine, theirs))
        mine, theirs = measure(([ours, "meta-data"], xen_env(hosts, config, 0, anchor=False)),
                               ([ANCHOR, "meta-data"], xen_env(hosts, config, 0, anchor=True)))
        rows.append(("meta-data", mine, theirs))
    finally:
        hosts.remove()
    print_report(rows, interp[0] + xl_list[0])
    drbd_report()
    lvm_report()
    scale_report()
    ok = True
    if os.environ.get("XENHA_BENCH_LAB", "1") != "0":      # the lab: a few minutes
        from xenha_lab.bench_lab import lab_report

        print()
        ok = lab_report() and ok
    if os.environ.get("XENHA_BENCH_REAL", "1") != "0":
        from xenha_lab.realkernel import bench as real_bench   # QEMU nodes: only where they can run

        ok = real_bench.report() == 0 and ok
    return 0 if ok else 1


def print_report(rows, floor_wall: float) -> None:
    print(f"xenha bench: ocf:xenha:xen-domain vs ocf:heartbeat:Xen on the simulated xl, "
          f"median of {RUNS} runs each")
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cpus, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"{'case':34} {'xenha wall/cpu ms':>18} {'anchor wall/cpu ms':>19} {'ratio wall':>11} {'ratio cpu':>10}  rc")
    for name, mine, theirs in rows:
        left = f"{mine[0]:8.1f} / {mine[1]:5.1f}"
        if theirs is None:
            print(f"{name:34} {left:>18}")
            continue
        right = f"{theirs[0]:8.1f} / {theirs[1]:5.1f}"
        ratio_wall = mine[0] / theirs[0] if theirs[0] else float("nan")
        ratio_cpu = mine[1] / theirs[1] if theirs[1] else float("nan")
        rcs = f"{sorted(mine[2])}/{sorted(theirs[2])}"
        print(f"{name:34} {left:>18} {right:>19} {ratio_wall:10.2f}x {ratio_cpu:9.2f}x  {rcs}")
    print(f"floor (interpreter + one xl list): {floor_wall:.1f} ms wall")


if __name__ == "__main__":
    sys.exit(main())
