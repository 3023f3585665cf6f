"""What a lab node has besides its cluster stack, as a machine installed for xenha would:

- OpenSSH: the node's own host key (DISK/etc/ssh) and root's key pair (DISK/root/.ssh,
  the node's /root), every node's root key authorized on every node and every host key
  known, so that `xl migrate`'s default transport (`ssh HOST xl migrate-receive`) and
  the xen-domain agent's preflight reach the target through the lab network without a
  prompt; sshd runs as a boot service on the node's addresses with a configuration of
  the lab's (DISK/etc/ssh/sshd_config, the host's never read);
- a disk: a sparse file on a loop device (DIR/nodes/N/pv.img), the node's only LVM
  physical volume (its lvm.conf accepts that device alone: every node may have a VG of
  the same name, as every real dom0 has its own vg0), on which the lab creates the
  volume group at the first boot; LV activation is the LVM simulator's.

The keys, the disk and the configuration live on the node's disk: they survive a power
cut, as a real machine's do.
"""

from __future__ import annotations

import os
import subprocess

from xenha_lab.lab.backend import LabError

SSHD = "/usr/sbin/sshd"
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"
ROOT_KEY = "/root/.ssh/id_ed25519"
PV_FILE = "pv.img"
PV_RECORD = "pv.loop"
PV_SIZE = 16 << 30                 # sparse: only what is written takes room


def _keygen(path: str, comment: str) -> str:
    """A new ed25519 key pair at `path` (no passphrase); the public key's line."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    proc = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise LabError(f"ssh-keygen failed: {(proc.stderr or proc.stdout).strip()}")
    with open(path + ".pub", encoding="ascii") as handle:
        return handle.read().strip()


def ssh_identities(lay, spec) -> None:
    """Host and root keys for every node, then each node's authorized_keys and
    known_hosts naming every node (by name and every address it has)."""
    host_keys, root_keys = {}, {}
    for node in spec.nodes:
        host = _keygen(lay.disk(node.name, HOST_KEY.lstrip("/")), f"root@{node.name}")
        host_keys[node.name] = " ".join(host.split()[:2])          # no comment in known_hosts
        root_keys[node.name] = _keygen(lay.disk(node.name, "root", ROOT_KEY[len("/root/"):]), f"root@{node.name}")
    known = "".join(f"{','.join([node.name, *addresses(node)])} {host_keys[node.name]}\n" for node in spec.nodes)
    authorized = "".join(root_keys[node.name] + "\n" for node in spec.nodes)
    for node in spec.nodes:
        ssh_dir = lay.disk(node.name, "root", ".ssh")
        for name, text in (("known_hosts", known), ("authorized_keys", authorized)):
            with open(os.path.join(ssh_dir, name), "w", encoding="ascii") as handle:
                handle.write(text)
            os.chmod(os.path.join(ssh_dir, name), 0o600)
        os.chmod(lay.disk(node.name, "root"), 0o700)


def addresses(node) -> list[str]:
    """Every IP address the node has (the lab's, then the description's)."""
    return [node.address, *[extra.split("/")[0] for extra in node.extra_addresses]]


def sshd_config(node, env: dict) -> str:
    """sshd on the node's addresses, root by key only, and the node's environment for
    what it runs (sshd's own default PATH lacks the node's tool directory, where the
    simulated xl is)."""
    lines = ["# the xenha lab's sshd (the host's /etc/ssh/sshd_config is not read)"]
    lines += [f"ListenAddress {address}" for address in addresses(node)]
    lines += [f"HostKey {HOST_KEY}", "PidFile /run/sshd.pid", "PermitRootLogin prohibit-password",
              "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
              "UsePAM no", "UseDNS no", "PrintMotd no", "PrintLastLog no", "StrictModes yes",
              "AuthorizedKeysFile .ssh/authorized_keys", "MaxStartups 100:30:200",
              "SetEnv " + " ".join(f"{key}={value}" for key, value in sorted(env.items())
                                   if key not in ("HOME", "TERM"))]
    return "\n".join(lines) + "\n"


def sshd_service() -> tuple:
    """The boot service: sshd in the foreground, its messages on the node's console."""
    return ("sh", "-c", f"mkdir -p -m 0755 /run/sshd && exec {SSHD} -D -e")


# --- the disk ----------------------------------------------------------------------------------------------------

def attach_disk(lay, name: str) -> str:
    """The node's disk on a loop device (the sparse file made on first use); its device,
    recorded in DIR/nodes/N/pv.loop."""
    image = lay.node(name, PV_FILE)
    if not os.path.exists(image):
        with open(image, "wb") as handle:
            handle.truncate(PV_SIZE)
    proc = subprocess.run(["losetup", "--find", "--show", image], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise LabError(f"cannot attach {image} to a loop device: {proc.stderr.strip()}")
    device = proc.stdout.strip()
    with open(lay.node(name, PV_RECORD), "w", encoding="ascii") as handle:
        handle.write(device + "\n")
    return device


def disk_device(lay, name: str) -> str | None:
    try:
        with open(lay.node(name, PV_RECORD), encoding="ascii") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def lvm_conf(device: str) -> str:
    """The node's lvm.conf: its one disk, no udev, no daemons, activation left to the
    LVM simulator (which forces activation=0 on the real lvm2 under it)."""
    accept = f'[ "a|^{device}$|", "r|.*|" ]'
    return ("# the xenha lab's lvm.conf for this node: its own disk only\n"
            "devices {\n"
            "\tuse_devicesfile = 0\n\tobtain_device_list_from_udev = 0\n\texternal_device_info_source = \"none\"\n"
            f"\thints = \"none\"\n\tglobal_filter = {accept}\n\tfilter = {accept}\n"
            "}\n"
            "global {\n\tuse_lvmpolld = 0\n\tuse_lvmlockd = 0\n\tnotify_dbus = 0\n\tevent_activation = 0\n"
            "\tsystem_id_source = \"none\"\n}\n"
            "activation {\n\tudev_sync = 0\n\tudev_rules = 0\n\tmonitoring = 0\n}\n")


def ensure_volume_group(lab, node: str, vg: str, device: str) -> bool:
    """The node's VG on its disk (pvcreate + vgcreate with the node's own lvm2), unless
    it exists already. True when it was created."""
    if lab.run(node, ["vgs", "--noheadings", "-o", "vg_name", vg], timeout=60).ok:
        return False
    lab.check(node, ["pvcreate", "-y", device], timeout=60)
    lab.check(node, ["vgcreate", vg, device], timeout=60)
    return True
