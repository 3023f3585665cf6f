"""Node images of the real-kernel tier, from Debian packages only.

    python3 -m xenha_lab.realkernel.image [--dir build/real] [--rebuild]

Products, each in a directory of its own step (DIR/<step>-<key>/), named by DIR/current.json:

    xen             xen.elf, the hypervisor (xen-hypervisor-4.17-amd64, the same version
                    as the xen-utils-4.17 inside the image), booted by QEMU's -kernel
    vmlinuz         Debian's kernel (linux-image-<abi>), dom0 and the PV guest
    initrd          a node's initramfs: busybox, virtio and ext4 modules, an /init that
                    mounts the root disk and starts /sbin/xenha-node-init
    guest_initrd    the PV guest's initramfs: busybox, blkfront/netfront, its writer
    root_image      root.img, ext4 (raw): debootstrap minbase + drbd-utils, lvm2,
                    xen-utils-4.17, pacemaker, corosync, pcs, ... + the kernel's modules;
                    every node boots a qcow2 overlay of it

Every step is cached under a key made of its inputs (package names and the versions
apt resolves today, the text of the files put in, this builder's version), so a step
runs again only when an input changed: a security update of the kernel or Xen, a new
package, an edited init script. Nothing comes from outside the Debian archive apt already
uses (reference/lab-real-kernel.md §2-3). Needs root, debootstrap, dpkg-deb, depmod,
mkfs.ext4, cpio, qemu-img.

The project itself is never baked in: a lab copies the installed xenha into its nodes at
every boot.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources

from xenha_lab.paths import DEFAULT_PATH

BUILDER_VERSION = 4          # bump when a step's recipe changes in a way its inputs don't show
SUITE_FALLBACK = "bookworm"
MIRROR_FALLBACK = "http://deb.debian.org/debian"
KERNEL_META = "linux-image-amd64"
XEN_UTILS = "xen-utils-4.17"
XEN_HYPERVISOR = "xen-hypervisor-4.17-amd64"
BUSYBOX = "busybox-static"
DRBD_UTILS = "drbd-utils"

# debootstrap --include (what a dom0 with DRBD and LVM needs) and the cluster stack, installed
# with apt in the chroot next to a drbd-utils rebuilt without its empty /var/lock
# (reference/tools.md §2: it does not unpack on an up-to-date bookworm).
BASE_PACKAGES = ("kmod", "iproute2", "iputils-ping", "procps", "e2fsprogs", "lvm2", "netbase", "less",
                 "python3", "socat")
CLUSTER_PACKAGES = ("pacemaker", "pacemaker-cli-utils", "corosync", "pcs", "resource-agents", "fence-agents",
                    "python3-click", "openssh-server", "openssh-client", "libxml2-utils")
# kernel module trees a node never uses (the image stays under a gigabyte)
PRUNED_MODULE_DIRS = ("drivers/gpu", "drivers/media", "drivers/net/wireless", "drivers/net/ethernet",
                      "drivers/infiniband", "drivers/staging", "drivers/usb", "drivers/bluetooth",
                      "drivers/iio", "drivers/hid", "drivers/input", "drivers/scsi", "drivers/isdn",
                      "drivers/video", "drivers/mmc", "drivers/mtd", "drivers/platform", "drivers/hwmon",
                      "drivers/thunderbolt", "drivers/nfc", "drivers/firewire", "sound", "net/bluetooth",
                      "net/wireless", "net/mac80211")
# a node's initramfs: enough to mount the virtio root disk
NODE_INITRD_MODULES = ("virtio_pci", "virtio_blk", "ext4", "crc32c_generic")
# the PV guest's initramfs: its disk and network are Xen's split drivers
GUEST_INITRD_MODULES = ("xen-blkfront", "xen-netfront")
ROOT_IMAGE_SLACK = 700 << 20       # free room in the root file system (logs, the project, xen state)


class BuildError(Exception):
    """An image step failed; one line for a person (the log file has the details)."""


def log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} image: {message}\n")
    sys.stderr.flush()


def default_build_dir() -> str:
    """XENHA_REAL_BUILD, else build/real of the checkout this module runs from (a
    development tree), else /var/cache/xenha-lab/real (an installed lab)."""
    configured = os.environ.get("XENHA_REAL_BUILD")
    if configured:
        return os.path.abspath(configured)
    here = os.path.dirname(os.path.abspath(__file__))
    checkout = os.path.normpath(os.path.join(here, "..", "..", ".."))
    if os.path.exists(os.path.join(checkout, "Makefile")) and os.path.isdir(os.path.join(checkout, "lib", "xenha")):
        return os.path.join(checkout, "build", "real")
    return "/var/cache/xenha-lab/real"


def node_file(name: str) -> str:
    """The text of a file that goes into the machines (lib/xenha_lab/realkernel/files)."""
    return resources.files("xenha_lab.realkernel").joinpath("files", name).read_text(encoding="utf-8")


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True).encode() if not isinstance(part, bytes) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


# --- running the host's tools -------------------------------------------------------------------------------------

def build_env() -> dict:
    """The caller's environment (a proxy setting reaches apt and debootstrap) with the
    system directories on PATH (depmod, mkfs.ext4, debootstrap live in sbin)."""
    return {**os.environ, "PATH": DEFAULT_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


class Runner:
    """Runs build commands with their output in one log file; a failure shows the end of it."""

    def __init__(self, logfile: str):
        self.logfile = logfile
        os.makedirs(os.path.dirname(logfile), exist_ok=True)

    def __call__(self, argv, timeout: float = 600.0, cwd: str | None = None, env: dict | None = None,
                 capture: bool = False, input: bytes | None = None) -> str:
        with open(self.logfile, "ab") as out:
            out.write(f"\n$ {' '.join(argv)}\n".encode())
            out.flush()
            try:
                proc = subprocess.run(argv, cwd=cwd, env=env or build_env(), timeout=timeout, input=input,
                                      stdout=subprocess.PIPE if capture else out, stderr=out,
                                      stdin=None if input is not None else subprocess.DEVNULL)
            except FileNotFoundError:
                raise BuildError(f"{argv[0]} is not installed") from None
            except subprocess.TimeoutExpired:
                raise BuildError(f"`{' '.join(argv[:3])} …` did not finish in {timeout:.0f} s "
                                 f"(log: {self.logfile})") from None
        if proc.returncode != 0:
            raise BuildError(f"`{' '.join(argv[:4])} …` failed with {proc.returncode}: {self.tail()} "
                             f"(log: {self.logfile})")
        return proc.stdout.decode(errors="replace") if capture else ""

    def tail(self) -> str:
        try:
            with open(self.logfile, encoding="utf-8", errors="replace") as handle:
                lines = [line.strip() for line in handle if line.strip()]
        except OSError:
            return ""
        return lines[-1][:300] if lines else ""


# --- what apt resolves today ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Versions:
    suite: str
    mirror: str
    kernel_package: str          # linux-image-6.1.0-57-amd64
    kernel_abi: str              # 6.1.0-57-amd64
    kernel_version: str
    xen_version: str             # of xen-utils-4.17 and the hypervisor, the same (Builder.choose_xen)
    busybox_version: str
    drbd_utils_version: str

    def to_json(self) -> dict:
        return dict(vars(self))


def apt_sources() -> tuple[str, str]:
    """(suite, mirror) of the Debian archive apt uses here (deb822 or one-line sources)."""
    suite = SUITE_FALLBACK
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VERSION_CODENAME="):
                    suite = line.split("=", 1)[1].strip().strip('"') or suite
    except OSError:
        pass
    mirror = os.environ.get("XENHA_REAL_MIRROR")
    if mirror:
        return suite, mirror
    texts = []
    for directory in ("/etc/apt/sources.list.d",):
        try:
            for name in sorted(os.listdir(directory)):
                if name.endswith((".sources", ".list")):
                    with open(os.path.join(directory, name), encoding="utf-8") as handle:
                        texts.append(handle.read())
        except OSError:
            pass
    try:
        with open("/etc/apt/sources.list", encoding="utf-8") as handle:
            texts.append(handle.read())
    except OSError:
        pass
    for text in texts:
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and suite in suites.group(1).split():
                return suite, uris.group(1)
        for line in text.splitlines():
            words = line.split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                return suite, next(w for w in words[1:] if not w.startswith("["))
    return suite, MIRROR_FALLBACK


def candidate(run: Runner, package: str) -> str:
    out = run(["apt-cache", "policy", package], capture=True, timeout=60)
    found = re.search(r"^\s*Candidate:\s*(\S+)", out, re.M)
    if not found or found.group(1) == "(none)":
        raise BuildError(f"apt knows no candidate of {package} (apt-get update?)")
    return found.group(1)


def versions_of(run: Runner, package: str) -> list[str]:
    """Every version of `package` apt can fetch, newest first (apt's own order)."""
    out = run(["apt-cache", "policy", package], capture=True, timeout=60)
    table = out.split("Version table:", 1)[-1]
    found = re.findall(r"^\s+(?:\*\*\* )?(\S+) \d+$", table, re.M)
    return list(dict.fromkeys(found))


def resolve(run: Runner, xen_version: str | None = None) -> Versions:
    """The packages and versions the image is made of, as apt resolves them now (the
    hypervisor's version chosen by Builder.choose_xen, which needs the packages)."""
    suite, mirror = apt_sources()
    try:
        depends = run(["apt-cache", "depends", KERNEL_META], capture=True, timeout=60)
    except BuildError:
        log("apt knows no kernel package: apt-get update")
        run(["apt-get", "update", "-q"], timeout=300)
        depends = run(["apt-cache", "depends", KERNEL_META], capture=True, timeout=60)
    found = re.search(r"Depends:\s*(linux-image-(\d\S*-amd64))\s*$", depends, re.M)
    if not found:
        raise BuildError(f"cannot tell which kernel {KERNEL_META} depends on")
    return Versions(suite=suite, mirror=mirror, kernel_package=found.group(1), kernel_abi=found.group(2),
                    kernel_version=candidate(run, found.group(1)), xen_version=xen_version or "",
                    busybox_version=candidate(run, BUSYBOX), drbd_utils_version=candidate(run, DRBD_UTILS))


# --- the steps -------------------------------------------------------------------------------------------------------

class Builder:
    def __init__(self, directory: str, rebuild: bool = False):
        self.dir = os.path.abspath(directory)
        self.rebuild = rebuild
        os.makedirs(self.dir, exist_ok=True)
        self.run = Runner(os.path.join(self.dir, "logs", time.strftime("build-%Y%m%d-%H%M%S.log")))
        self.timings: dict[str, float] = {}

    def path(self, *parts) -> str:
        return os.path.join(self.dir, *parts)

    def step(self, name: str, key: str, make, keep_others: bool = False) -> str:
        """DIR/name-key, made by make(tmpdir) into a temporary directory renamed into place
        (all or nothing); reused when it exists. The step's other keys are removed unless
        `keep_others` (downloads of several versions)."""
        target = self.path(f"{name}-{key}")
        if os.path.isdir(target) and not self.rebuild:
            return target
        started = time.monotonic()
        log(f"{name}: building ({os.path.basename(target)})")
        tmp = tempfile.mkdtemp(prefix=f".{name}-", dir=self.dir)
        try:
            make(tmp)
            if os.path.isdir(target):
                shutil.rmtree(target)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.timings[name] = time.monotonic() - started
        log(f"{name}: done in {self.timings[name]:.1f} s")
        for old in [] if keep_others else os.listdir(self.dir):      # earlier keys of the same step
            if old.startswith(f"{name}-") and old != os.path.basename(target):
                shutil.rmtree(self.path(old), ignore_errors=True)
        return target

    # downloads: the .debs themselves, by exact version
    def download(self, package: str, version: str) -> str:
        def make(tmp):
            self.run(["apt-get", "download", f"{package}={version}"], cwd=tmp, timeout=600)
        directory = self.step(f"deb-{package}", _digest(package, version), make, keep_others=True)
        debs = [n for n in os.listdir(directory) if n.endswith(".deb")]
        if len(debs) != 1:
            raise BuildError(f"apt-get download {package}={version} left {len(debs)} files")
        return os.path.join(directory, debs[0])

    def kernel(self, v: Versions) -> str:
        """The kernel package unpacked, modules.dep made (the .deb has none: its postinst
        makes it)."""
        deb = self.download(v.kernel_package, v.kernel_version)

        def make(tmp):
            self.run(["dpkg-deb", "-x", deb, tmp])
            self.run(["depmod", "-b", tmp, v.kernel_abi])
        return self.step("kernel", _digest(v.kernel_package, v.kernel_version, BUILDER_VERSION), make)

    def choose_xen(self) -> tuple[str, list]:
        """The newest hypervisor built with CONFIG_SHADOW_PAGING: a PV guest's live
        migration needs log-dirty mode, which Xen implements for PV with shadow paging
        (without it `xl migrate` fails: "xc: error: Failed to enable logdirty: 95").
        Debian's bookworm-security build 4.17.7+13-g2445b30a44-0+deb12u1 has it off,
        bookworm's 4.17.5+72-g01140da4e8-1 on. Returns (version, [(skipped, why)])."""
        utils = set(versions_of(self.run, XEN_UTILS))
        skipped = []
        for version in versions_of(self.run, XEN_HYPERVISOR):
            if version not in utils:
                skipped.append((version, f"no {XEN_UTILS} of that version"))
                continue
            deb = self.download(XEN_HYPERVISOR, version)
            config = subprocess.run(f"dpkg-deb --fsys-tarfile '{deb}' | tar -xOf - ./boot/xen-4.17-amd64.config",
                                    shell=True, capture_output=True, text=True, timeout=60, env=build_env()).stdout
            if re.search(r"^CONFIG_SHADOW_PAGING=y$", config, re.M):
                return version, skipped
            skipped.append((version, "built without CONFIG_SHADOW_PAGING (no PV live migration)"))
        raise BuildError("no Xen 4.17 hypervisor with shadow paging in the archive: "
                         + "; ".join(f"{v}: {why}" for v, why in skipped))

    def hypervisor(self, v: Versions) -> str:
        deb = self.download(XEN_HYPERVISOR, v.xen_version)

        def make(tmp):
            self.run(["dpkg-deb", "-x", deb, os.path.join(tmp, "pkg")])
            boot = os.path.join(tmp, "pkg", "boot")
            found = [n for n in os.listdir(boot) if re.fullmatch(r"xen-4\.17-amd64\.gz", n)]
            if not found:
                raise BuildError(f"{XEN_HYPERVISOR} has no boot/xen-4.17-amd64.gz")
            with gzip.open(os.path.join(boot, found[0]), "rb") as src, open(os.path.join(tmp, "xen.elf"), "wb") as dst:
                shutil.copyfileobj(src, dst)
            shutil.rmtree(os.path.join(tmp, "pkg"))
        return os.path.join(self.step("xen", _digest(v.xen_version, BUILDER_VERSION), make), "xen.elf")

    def busybox(self, v: Versions) -> str:
        deb = self.download(BUSYBOX, v.busybox_version)

        def make(tmp):
            self.run(["dpkg-deb", "-x", deb, os.path.join(tmp, "pkg")])
            shutil.copy2(os.path.join(tmp, "pkg", "bin", "busybox"), os.path.join(tmp, "busybox"))
            shutil.rmtree(os.path.join(tmp, "pkg"))
        return os.path.join(self.step("busybox", _digest(v.busybox_version), make), "busybox")

    def drbd_utils(self, v: Versions) -> str:
        """drbd-utils rebuilt without its empty ./var/lock (same version: apt is satisfied)."""
        deb = self.download(DRBD_UTILS, v.drbd_utils_version)

        def make(tmp):
            tree = os.path.join(tmp, "tree")
            self.run(["dpkg-deb", "-R", deb, tree])
            shutil.rmtree(os.path.join(tree, "var", "lock"), ignore_errors=True)
            try:
                os.rmdir(os.path.join(tree, "var"))
            except OSError:
                pass
            self.run(["dpkg-deb", "-b", tree, os.path.join(tmp, "drbd-utils_repacked.deb")])
            shutil.rmtree(tree)
        return os.path.join(self.step("drbd-utils", _digest(v.drbd_utils_version, BUILDER_VERSION), make),
                            "drbd-utils_repacked.deb")

    def rootfs(self, v: Versions) -> str:
        """debootstrap minbase + the packages: the slow step (about 1.5 min)."""
        drbd = self.drbd_utils(v)
        key = _digest(v.suite, v.mirror, BASE_PACKAGES, CLUSTER_PACKAGES, v.xen_version, v.drbd_utils_version,
                      BUILDER_VERSION)

        def make(tmp):
            tree = os.path.join(tmp, "tree")
            cache = self.path("debootstrap-cache")
            os.makedirs(cache, exist_ok=True)
            # a private mount namespace: debootstrap's and our mounts in the tree die with the
            # process, even when it is killed (a later rm -rf never meets a mounted /proc)
            self.run(["unshare", "--mount", "--propagation", "private", "--",
                      "debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                      f"--cache-dir={cache}", v.suite, tree, v.mirror], timeout=1200)
            self._apt_in_chroot(tree, v, drbd)
        return os.path.join(self.step("rootfs", key, make), "tree")

    def _apt_in_chroot(self, tree: str, v: Versions, drbd_deb: str) -> None:
        sources = (f"Types: deb\nURIs: {v.mirror}\nSuites: {v.suite} {v.suite}-updates\nComponents: main\n"
                   "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n")
        security = _security_mirror(v)
        if security:
            sources += (f"Types: deb\nURIs: {security}\nSuites: {v.suite}-security\nComponents: main\n"
                        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
        with open(os.path.join(tree, "etc", "apt", "sources.list.d", "debian.sources"), "w") as handle:
            handle.write(sources)
        try:
            os.unlink(os.path.join(tree, "etc", "apt", "sources.list"))
        except FileNotFoundError:
            pass
        policy = os.path.join(tree, "usr", "sbin", "policy-rc.d")
        with open(policy, "w") as handle:           # no service starts in the chroot
            handle.write("#!/bin/sh\nexit 101\n")
        os.chmod(policy, 0o755)
        shutil.copy2(drbd_deb, os.path.join(tree, "tmp", "drbd-utils_repacked.deb"))
        packages = " ".join((*CLUSTER_PACKAGES, f"{XEN_UTILS}={v.xen_version}"))
        script = ("set -e; mount -t proc proc \"$0/proc\"; "
                  "chroot \"$0\" apt-get update -q; "
                  "chroot \"$0\" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
                  f"{packages} /tmp/drbd-utils_repacked.deb; "
                  "chroot \"$0\" apt-get clean; umount \"$0/proc\"")
        self.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, tree], timeout=1200)
        os.unlink(os.path.join(tree, "tmp", "drbd-utils_repacked.deb"))
        installed = self.run(["chroot", tree, "dpkg-query", "-W", "-f=${Version}", XEN_UTILS], capture=True)
        if installed != v.xen_version:
            raise BuildError(f"{XEN_UTILS} {installed} in the image, but the hypervisor is {v.xen_version}")
        os.unlink(policy)
        shutil.rmtree(os.path.join(tree, "var", "lib", "apt", "lists"), ignore_errors=True)
        os.makedirs(os.path.join(tree, "var", "lib", "apt", "lists", "partial"), exist_ok=True)

    def images(self, v: Versions) -> dict:
        """Every product, each from its own cached step; DIR/current.json names them."""
        kernel = self.kernel(v)
        busybox = self.busybox(v)
        modules = os.path.join(kernel, "lib", "modules", v.kernel_abi)
        products = {"xen": self.hypervisor(v), "vmlinuz": os.path.join(kernel, "boot", f"vmlinuz-{v.kernel_abi}")}
        for product, script, wanted in (("initrd", "initrd-init", NODE_INITRD_MODULES),
                                        ("guest_initrd", "guest-init", GUEST_INITRD_MODULES)):
            text = node_file(script)

            def make(tmp, text=text, wanted=wanted):
                make_initramfs(os.path.join(tmp, "initrd.gz"), busybox, modules, v.kernel_abi, wanted, text,
                               self.run)
            key = _digest(os.path.basename(kernel), os.path.basename(os.path.dirname(busybox)), wanted, text,
                          BUILDER_VERSION)
            products[product] = os.path.join(self.step(product.replace("_", "-"), key, make), "initrd.gz")
        tree = self.rootfs(v)
        init_text = node_file("node-init")
        key = _digest(os.path.basename(os.path.dirname(tree)), os.path.basename(kernel), init_text,
                      PRUNED_MODULE_DIRS, LVM_NO_UDEV, DRBD_84_GLOBAL, BUILDER_VERSION)
        products["root_image"] = os.path.join(
            self.step("root-image", key, lambda tmp: self._root_image(tmp, tree, modules, v, init_text)), "root.img")
        manifest = {"products": products, "versions": v.to_json(), "builder": BUILDER_VERSION}
        with open(self.path("current.json.tmp"), "w") as handle:
            json.dump(manifest, handle, indent=1)
        os.replace(self.path("current.json.tmp"), self.path("current.json"))
        return manifest

    def _root_image(self, tmp: str, tree: str, modules: str, v: Versions, init_text: str) -> None:
        """root.img (raw): a copy of the tree with the kernel's modules (pruned), PID 1 and the
        settings a node without udev and systemd needs, made into ext4 by mkfs -d."""
        work = os.path.join(tmp, "root")
        self.run(["cp", "-a", tree, work], timeout=600)
        target = os.path.join(work, "usr", "lib", "modules", v.kernel_abi)
        shutil.copytree(modules, target, symlinks=True)
        for pruned in PRUNED_MODULE_DIRS:
            shutil.rmtree(os.path.join(target, "kernel", pruned), ignore_errors=True)
        self.run(["depmod", "-b", work, v.kernel_abi])
        configure_root(work, init_text)
        used = int(self.run(["du", "-sxb", work], capture=True).split()[0])
        size_mib = (used + ROOT_IMAGE_SLACK) // (1 << 20) + 1
        self.run(["mkfs.ext4", "-q", "-F", "-L", "xenha-root", "-d", work, os.path.join(tmp, "root.img"),
                  f"{size_mib}M"], timeout=600)
        shutil.rmtree(work)


def _security_mirror(v: Versions) -> str | None:
    """The security archive next to the mirror (deb.debian.org/debian -> .../debian-security)."""
    if v.mirror.rstrip("/").endswith("/debian"):
        return v.mirror.rstrip("/") + "-security"
    return None


# --- the files of a node -----------------------------------------------------------------------------------------

LVM_NO_UDEV = "\tudev_sync = 0\n\tudev_rules = 0\n"
DRBD_84_GLOBAL = ("# xenha real-kernel lab: DRBD 8.4 syntax (Debian's file has the DRBD 9 option\n"
                  "# udev-always-use-vnr, which drbdadm-84 rejects)\n"
                  "global {\n\tusage-count no;\n}\ncommon {\n}\n")


def configure_root(root: str, init_text: str) -> None:
    """What a node needs beyond the packages: PID 1, LVM without udev, an 8.4-compatible
    DRBD global file, ssh keys for `xl migrate` (lab-only keys: every node trusts every
    node), no services started by packages."""
    init = os.path.join(root, "sbin", "xenha-node-init")
    with open(init, "w") as handle:
        handle.write(init_text)
    os.chmod(init, 0o755)
    lvm = os.path.join(root, "etc", "lvm", "lvm.conf")
    with open(lvm, encoding="utf-8") as handle:
        text = handle.read()
    if not re.search(r"^activation \{\n", text, re.M):
        raise BuildError("lvm.conf has no activation section")
    with open(lvm, "w", encoding="utf-8") as handle:
        handle.write(re.sub(r"^activation \{\n", "activation {\n" + LVM_NO_UDEV, text, count=1, flags=re.M))
    with open(os.path.join(root, "etc", "drbd.d", "global_common.conf"), "w") as handle:
        handle.write(DRBD_84_GLOBAL)
    for directory in ("share", "var/log/xen", "var/lib/xen", "var/log/corosync", "var/log/pacemaker"):
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    ssh = os.path.join(root, "root", ".ssh")
    os.makedirs(ssh, mode=0o700, exist_ok=True)
    key = os.path.join(ssh, "id_ed25519")
    if not os.path.exists(key):
        subprocess.run(["chroot", root, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "xenha-lab",
                        "-f", "/root/.ssh/id_ed25519"], check=True, capture_output=True, timeout=60, env=build_env())
    with open(key + ".pub", encoding="utf-8") as handle:
        public = handle.read()
    with open(os.path.join(ssh, "authorized_keys"), "w") as handle:
        handle.write(public)
    host_keys = os.path.join(root, "etc", "ssh")
    for name in os.listdir(host_keys):
        if name.startswith("ssh_host_"):
            os.unlink(os.path.join(host_keys, name))
    subprocess.run(["chroot", root, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    "/etc/ssh/ssh_host_ed25519_key"], check=True, capture_output=True, timeout=60, env=build_env())
    with open(os.path.join(host_keys, "ssh_host_ed25519_key.pub"), encoding="utf-8") as handle:
        kind, blob = handle.read().split()[:2]
    with open(os.path.join(ssh, "known_hosts"), "w") as handle:      # the one host key of every node
        handle.write(f"* {kind} {blob}\n")
    with open(os.path.join(root, "etc", "ssh", "sshd_config.d", "xenha-lab.conf"), "w") as handle:
        handle.write("HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\nUseDNS no\n"
                     "PasswordAuthentication no\n")
    for name in ("hostname", "machine-id"):
        with open(os.path.join(root, "etc", name), "w") as handle:
            handle.write("")


# --- initramfs ---------------------------------------------------------------------------------------------------

def module_closure(modules_dir: str, wanted) -> list[str]:
    """Relative paths (kernel/...ko) of `wanted` modules and everything they depend on,
    hard and soft (pre) dependencies, dependencies first."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    with open(os.path.join(modules_dir, "modules.dep"), encoding="utf-8") as handle:
        for line in handle:
            path, _, rest = line.partition(":")
            deps[path] = rest.split()
            by_name[_module_name(path)] = path
    softdeps: dict[str, list[str]] = {}
    try:
        with open(os.path.join(modules_dir, "modules.softdep"), encoding="utf-8") as handle:
            for line in handle:
                words = line.split()
                if len(words) >= 3 and words[0] == "softdep":
                    pre = words[3:words.index("post:")] if "post:" in words else words[3:]
                    if words[2] == "pre:":
                        softdeps[words[1].replace("-", "_")] = [w.replace("-", "_") for w in pre]
    except FileNotFoundError:
        pass
    order: list[str] = []

    def add(name: str) -> None:
        name = name.replace("-", "_")
        path = by_name.get(name)
        if path is None:
            raise BuildError(f"no kernel module {name}")
        if path in order:
            return
        for soft in softdeps.get(name, ()):
            if soft in by_name:
                add(soft)
        for dep in deps[path]:
            add(_module_name(dep))
        order.append(path)
    for module in wanted:
        add(module)
    return order


def _module_name(path: str) -> str:
    return os.path.basename(path).split(".ko")[0].replace("-", "_")


def make_initramfs(target: str, busybox: str, modules_dir: str, abi: str, modules, init_text: str,
                   run: Runner) -> None:
    """busybox (a link per applet), the modules and their dependencies (with modules.dep
    made by depmod for busybox's modprobe), /init; newc cpio, gzip."""
    with tempfile.TemporaryDirectory(prefix="initramfs-") as root:
        for directory in ("bin", "dev", "proc", "sys", "newroot", "tmp", "etc", f"lib/modules/{abi}"):
            os.makedirs(os.path.join(root, directory), exist_ok=True)
        shutil.copy2(busybox, os.path.join(root, "bin", "busybox"))
        applets = run([busybox, "--list"], capture=True).split()
        for applet in applets:
            if applet != "busybox":
                os.symlink("busybox", os.path.join(root, "bin", applet))
        os.symlink("bin", os.path.join(root, "sbin"))
        chosen = module_closure(modules_dir, modules)
        for path in chosen:
            dest = os.path.join(root, "lib", "modules", abi, path)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy2(os.path.join(modules_dir, path), dest)
        for name in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
            source = os.path.join(modules_dir, name)
            if os.path.exists(source):
                shutil.copy2(source, os.path.join(root, "lib", "modules", abi, name))
        run(["depmod", "-b", root, abi])
        with open(os.path.join(root, "modules.load"), "w") as handle:
            handle.write("".join(_module_name(p) + "\n" for p in chosen))
        with open(os.path.join(root, "init"), "w") as handle:
            handle.write(init_text)
        os.chmod(os.path.join(root, "init"), 0o755)
        listing = subprocess.run(["find", "."], cwd=root, capture_output=True, check=True).stdout
        archive = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=listing,
                                 capture_output=True, check=True).stdout
        with gzip.open(target, "wb", compresslevel=1) as handle:
            handle.write(archive)


# --- entry points --------------------------------------------------------------------------------------------------

def build(directory: str | None = None, rebuild: bool = False) -> tuple[dict, dict]:
    """The current images' manifest (built or reused) and the seconds each step that ran took."""
    if os.geteuid() != 0:
        raise BuildError("building the node images needs root (debootstrap, chroot)")
    builder = Builder(directory or default_build_dir(), rebuild=rebuild)
    versions = resolve(builder.run)
    xen, skipped = builder.choose_xen()
    versions = Versions(**{**versions.to_json(), "xen_version": xen})
    for version, why in skipped:
        log(f"{XEN_HYPERVISOR} {version} not used: {why}")
    manifest = builder.images(versions)
    manifest["xen_skipped"] = [{"version": v, "why": why} for v, why in skipped]
    with open(builder.path("current.json.tmp"), "w") as handle:
        json.dump(manifest, handle, indent=1)
    os.replace(builder.path("current.json.tmp"), builder.path("current.json"))
    return manifest, builder.timings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="xenha-real-image", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=None, help="build directory (default: build/real of the checkout)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild every step")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        manifest, timings = build(args.dir, args.rebuild)
    except BuildError as error:
        sys.stderr.write(f"image: {error}\n")
        return 1
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) or "all cached"
    print(f"images: {os.path.dirname(manifest['products']['root_image'])} ({steps}; "
          f"{time.monotonic() - started:.1f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
