"""Domains of the simulated `xl`: finding one by name or id, creating one from its
config (a guest process behind it), renaming one. Shared by the xl sub-commands and
the live migration. Callers hold the host lock where a docstring says so."""

from __future__ import annotations

import os
import sys
import time

from xenha_lab.paths import child_code
from xenha_lab.sim.xen import state as st
from xenha_lab.sim.xen.command import ERROR_INVAL, Exit, err
from xenha_lab.sim.xen.state import SimHost


def find_domain(host: SimHost, arg: str) -> st.DomainRecord:
    """xl's find_domain: digits are a domid (not checked here), names must exist."""
    if arg.isdigit():
        record = host.by_id(int(arg))
        if record is None:
            record = st.DomainRecord(host, int(arg), {})
        return record
    record = host.find(arg)
    if record is None:
        raise Exit(1, f"{arg} is an invalid domain identifier (rc={ERROR_INVAL})")
    return record


def parse_config_text(text: str, path: str):
    from xenha.tools import xl_config

    try:
        return xl_config.parse(text, path)
    except xl_config.XlConfigError as error:
        raise Exit(1, f"{error}\nFailed to parse config: Invalid argument") from None


def spawn_guest(host: SimHost, domid: int, paused: bool) -> tuple[int, str]:
    """Start the guest process of a domain, detached (its own session, no stdio)."""
    code = child_code("from xenha_lab.sim.xen.guest import main; sys.exit(main())")
    argv = [sys.executable, "-IS", "-c", code, host.root, str(domid)] + (["--paused"] if paused else [])
    actions = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    # Requests (SIGTERM, SIGUSR1) stay pending until the guest has installed its handlers,
    # as a real guest's shutdown request waits in xenstore until its driver is up.
    pid = os.posix_spawn(sys.executable, argv, dict(os.environ), file_actions=actions, setsid=True,
                         setsigmask=(st.SIGTERM, st.SIGUSR1))
    # Wait until the guest exists (and, when asked to start paused, has stopped itself:
    # an unpause must never race ahead of the pause). Init reaps it when it dies.
    for _ in range(1000):
        stat = st.proc_stat(pid)
        if stat is not None and (not paused or stat[0] in "Tt"):
            return pid, stat[1]
        time.sleep(0.005)
    raise Exit(3, "libxl: error: cannot start the domain's guest process")


def create_domain(host: SimHost, text: str, path: str, name: str, paused: bool,
                  memory_image: str | None = None) -> st.DomainRecord:
    """Create a domain from config text (caller holds the host lock)."""
    import uuid

    config = parse_config_text(text, path)
    if host.find(name) is not None:
        raise Exit(3, f'libxl: error: libxl_domain.c:519:libxl__domain_rename: Domain {host.allocate_domid()}:'
                      f'Domain with name "{name}" already exists.')
    memory = int(config.get("memory", 128))
    if host.used_memory() + memory > st.HOST_MEMORY_MIB:
        raise Exit(3, "failed to free memory for the domain")
    domid = host.allocate_domid()
    record = st.DomainRecord(host, domid, {
        "name": name,
        "uuid": str(config.get("uuid") or uuid.uuid4()),
        "memory": str(memory),
        "vcpus": str(int(config.get("vcpus", 1))),
        "type": config.string("type") or ("hvm" if config.string("builder") == "hvm" else "pv"),
        "pv_drivers": "0" if str(config.get("sim_pv_drivers", 1)) == "0" else "1",
        "on_poweroff": config.string("on_poweroff") or "destroy",
        "on_reboot": config.string("on_reboot") or "restart",
        "on_crash": config.string("on_crash") or "destroy",
        "status": "live",
        "created": f"{time.time():.3f}",
        "pid": "0",
    })
    st.write_atomic(record.path(".cfg"), text)
    if memory_image is not None:
        st.write_atomic(record.path(".mem"), memory_image)
    record.save()
    pid, start = spawn_guest(host, domid, paused)
    record.data.update(pid=str(pid), pid_start=start, pidns=st.pid_namespace())
    record.save()
    return record


def respawn(host: SimHost):
    """The reconcile callback that recreates a rebooting domain."""
    def spawn(text: str, memory: str | None, name: str) -> None:
        try:
            create_domain(host, text, "<reboot>", name, paused=False, memory_image=memory)
        except Exit as failure:
            err(failure.message)
    return spawn


def rename(host: SimHost, record: st.DomainRecord, new: str) -> bool:
    other = host.find(new)
    if other is not None and other.domid != record.domid:
        err(f'libxl: error: libxl_domain.c:519:libxl__domain_rename: Domain {record.domid}:'
            f'Domain with name "{new}" already exists.')
        return False
    record.data["name"] = new
    record.save()
    return True
