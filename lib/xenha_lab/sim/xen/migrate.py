"""`xl migrate` and `xl migrate-receive` of the simulated xl.

The sender runs the transport exactly as xl does (`sh -c "exec <ssh> <host> xl
migrate-receive"`, or `<host>` alone with `-s ""`) and speaks xl's handshake over its
stdin/stdout (the words in `xenha_lab.sim.xen.protocol`): banner, saved domain (config +
guest memory), "ready", GO, report + status byte. Names and messages follow xl: the
receiver holds `NAME--incoming` (paused) until GO; the sender renames its copy
`NAME--migratedaway` just before GO and destroys it after a successful report; a
failure before GO resumes the source; a failure from GO on leaves the state undefined. Faults (state.FAULTS) break it at those points.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time

from xenha_lab.sim.xen import state as st
from xenha_lab.sim.xen.command import Exit, err, getopt, require
from xenha_lab.sim.xen.domains import create_domain, find_domain, rename, respawn
from xenha_lab.sim.xen.protocol import (BANNER, GO, HANDSHAKE_FAILED, INCOMING, MIGRATEDAWAY, READY, REPORT,
                                        SAVE_MAGIC, read_exact, write_all)


# --- sender ------------------------------------------------------------------------
def cmd_migrate(host: st.SimHost, args) -> int:
    opts, positional = getopt(args, "FC:s:epD", {"debug": ("d", False), "live": ("L", False)})
    flags = dict(opts)
    if "h" in flags:
        print("Usage: xl [-vf] migrate [options] <Domain> <host>")
        return 0
    require("migrate", positional, 2)
    with host:
        host.reconcile(respawn(host))
        record = find_domain(host, positional[0])
        if not record.data:
            raise Exit(1, "unable to retrieve domain configuration")
    target = positional[1]
    transport = flags.get("s", "ssh")
    if transport == "":
        rune = target
    else:
        remote = " migrate-receive" + (" -e" if ("e" in flags or "F" in flags) else "") + \
                 (" -d" if "d" in flags else "") + (" -p" if "p" in flags else "")
        rune = f"exec {transport} {target} xl{remote}"
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    pid = os.posix_spawnp("sh", ["sh", "-c", rune], dict(os.environ),
                          file_actions=[(os.POSIX_SPAWN_DUP2, to_r, 0), (os.POSIX_SPAWN_DUP2, from_w, 1)])
    os.close(to_r)
    os.close(from_w)
    try:
        return Sender(host, record, to_w, from_r, pid, rune, flags).run()
    finally:
        for fd in (to_w, from_r):
            try:
                os.close(fd)
            except OSError:
                pass
        reap(pid)


def reap(pid: int) -> None:
    for _ in range(100):
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.02)


class Sender:
    def __init__(self, host, record, out_fd, in_fd, pid, rune, flags):
        self.host, self.record = host, record
        self.out_fd, self.in_fd, self.pid, self.rune, self.flags = out_fd, in_fd, pid, rune, flags
        self.name = record.name

    def fail_resume(self) -> int:
        err("Migration failed, resuming at sender.")
        self.resume(self.name)
        return 1

    def resume(self, name: str) -> None:
        with self.host:
            record = self.host.by_id(self.record.domid)
            if record is None:
                return
            if record.name != name:
                rename(self.host, record, name)
            record.data["status"] = "live"
            record.save()
            record.signal(st.SIGCONT)

    def run(self) -> int:
        banner = read_exact(self.in_fd, len(BANNER))
        if banner is None:
            err("libxl: error: libxl_utils.c:183:libxl_read_exactly: file/stream truncated reading "
                "banner from migration receiver stream")
            return 1
        if banner != BANNER:
            err("migration receiver stream contained unexpected data instead of banner")
            err(f"(command run was: {self.rune} )")
            return 1
        fault = self.host.fault("migrate")
        if fault == "fail-suspend":
            err("migration sender: libxl_domain_suspend failed (rc=-8)")
            err("Migration failed, failed to suspend at sender.")
            return 1
        if fault == "hang":
            while True:
                time.sleep(3600)
        override = self.flags.get("C")
        try:
            with open(override or self.record.path(".cfg"), encoding="utf-8") as handle:
                config_text = handle.read()
        except OSError:
            err("unable to read overridden config file" if override else "unable to retrieve domain configuration")
            return 1
        # Live phase, then suspend: the guest stops, its memory is final.
        self.record.signal(st.SIGSTOP)
        with self.host:
            record = self.host.by_id(self.record.domid)
            record.data["status"] = "suspended"
            record.save()
        time.sleep(0.05)
        memory = st.read_kv(self.record.path(".mem"))
        memory_text = "".join(f"{k}={v}\n" for k, v in memory.items())
        payload = json.dumps({"name": self.name, "config": config_text, "memory": memory_text}).encode()
        err(f"Saving to migration stream new xl format (info 0x3/0x0/{len(payload) + 5})")
        if not write_all(self.out_fd, SAVE_MAGIC + struct.pack(">I", len(payload)) + payload):
            return self.fail_resume()
        ready = read_exact(self.in_fd, len(READY))
        if ready != READY:
            return self.fail_resume()
        err("migration sender: Target has acknowledged transfer.")
        with self.host:
            record = self.host.by_id(self.record.domid)
            if record is None or not rename(self.host, record, self.name + MIGRATEDAWAY):
                return self.fail_resume()
        err("migration sender: Giving target permission to start.")
        if not write_all(self.out_fd, GO) or fault == "lose-after-go":
            sys.stderr.write(HANDSHAKE_FAILED)
            return 1
        report = read_exact(self.in_fd, len(REPORT) + 1)
        if report is None or report[:-1] != REPORT:
            sys.stderr.write(HANDSHAKE_FAILED)
            return 1
        status = struct.unpack("b", report[-1:])[0]
        if status != 0:
            err(f"migration sender: Target reports startup failure (status code {status}).")
            if read_exact(self.in_fd, len(GO)) != GO:
                sys.stderr.write(HANDSHAKE_FAILED)
                return 1
            err("migration sender: Trying to resume at our end.")
            self.resume(self.name)
            err("migration sender: Resumed OK.")
            err("Migration failed due to problems at target.")
            return 1
        err("migration sender: Target reports successful startup.")
        with self.host:
            record = self.host.by_id(self.record.domid)
            if record is not None:
                self.host.destroy(record)
        err("Migration successful.")
        return 0


# --- receiver ----------------------------------------------------------------------
def cmd_migrate_receive(host: st.SimHost, args) -> int:
    opts, positional = getopt(args, "Fedrp", {"colo": ("c", False)})
    flags = dict(opts)
    if positional:
        return 1
    stdin, stdout = 0, 1
    err("migration target: Ready to receive domain.")
    if not write_all(stdout, BANNER):
        return 1
    header = read_exact(stdin, len(SAVE_MAGIC) + 4)
    if header is None or header[:len(SAVE_MAGIC)] != SAVE_MAGIC:
        err("migration target: Domain creation failed (code -3).")
        return 1
    size = struct.unpack(">I", header[len(SAVE_MAGIC):])[0]
    payload = read_exact(stdin, size)
    fault = host.fault("migrate-receive")
    if payload is None or fault == "fail-transfer":
        err("migration target: Domain creation failed (code -3).")
        return 1
    saved = json.loads(payload)
    name = saved["name"]
    err(f"Loading new save file <incoming migration stream> (new xl fmt info 0x3/0x0/{size + 5})")
    err(" Savefile contains xl domain config in JSON format")
    err("Parsing config from <saved>")
    config_text = saved["config"] + f'\nname="{name}{INCOMING}"\n'
    try:
        with host:
            host.reconcile(respawn(host))
            if host.find(name) is not None:
                raise Exit(3, f'libxl: error: libxl_domain.c:519:libxl__domain_rename: Domain 0:'
                              f'Domain with name "{name}" already exists.')
            record = create_domain(host, config_text, "<saved>", name + INCOMING, paused=True,
                                   memory_image=saved["memory"])
    except Exit as failure:
        err(failure.message)
        err(f"migration target: Domain creation failed (code {-failure.code}).")
        return 1
    err("migration target: Transfer complete, requesting permission to start domain.")
    if not write_all(stdout, READY):
        return 1
    go = read_exact(stdin, len(GO))
    if go != GO or fault == "fail-start":
        return give_back(host, record, stdout)
    err("migration target: Got permission, starting domain.")
    if fault == "die-after-go":
        os._exit(1)  # the receiver dies: NAME--incoming stays paused, nobody reports
    with host:
        record = host.by_id(record.domid)
        if not rename(host, record, name):
            return give_back(host, record, stdout)
        if "p" not in flags:
            record.signal(st.SIGCONT)
    err("migration target: Domain started successsfully.")
    if not write_all(stdout, REPORT + struct.pack("b", 0)):
        return 1
    return 0


def give_back(host: st.SimHost, record: st.DomainRecord, stdout: int) -> int:
    write_all(stdout, REPORT + struct.pack("b", 3))
    err("migration target: Failure, destroying our copy.")
    with host:
        current = host.by_id(record.domid)
        if current is not None:
            host.destroy(current)
    err("migration target: Cleanup OK, granting sender permission to resume.")
    write_all(stdout, GO)
    return 0
