"""Shared test fixtures.

Layers (see design.md): unit tests import the package directly; agent, simulator and
conformance tests run the *installed* agents and simulators, which `make test` provides
through a staged install visible at the real paths (scripts/with-staged-install). Under
`make test` (XENHA_STAGED=1) a missing installed file is a failure, not a skip.
"""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests" / "samples"
SHARED = pathlib.Path(os.environ.get("XENHA_SHARED", REPO.parent / "shared"))
RNG = REPO / "ocf" / "ocf-1.1-ra-api.rng"
STAGED = os.environ.get("XENHA_STAGED") == "1"

# The howto's domU config, unchanged (the demo runs it too).
from xenha_lab.demo_agents import SHAOLIN_CFG as SHAOLIN_LEGACY  # noqa: E402

SHAOLIN_XL = """\
# xl-style, plain phy: disk on the DRBD device
name = "shaolin"
type = "pv"
memory = 512
vcpus = 1
kernel = "/boot/vmlinuz-xen"
disk = [ 'format=raw, vdev=xvda, access=rw, target=/dev/drbd1' ]
vif = [ 'bridge=xenbr0,mac=00:16:3e:00:00:01' ]
on_crash = "preserve"
"""


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def sample_blocks(name: str) -> list[tuple[str, str, int]]:
    """The `$ command` / output / `[rc=N]` blocks of a sample file."""
    blocks, command, lines = [], None, []
    for line in sample(name).splitlines():
        if line.startswith("$ "):
            command, lines = line[2:], []
        elif line.startswith("[rc=") and command is not None:
            blocks.append((command, "\n".join(lines), int(line[4:-1])))
            command = None
        elif command is not None:
            lines.append(line)
    return blocks


def missing_prerequisite(what: str) -> None:
    """The suite's rule: under `make test` (which provides every prerequisite) a missing
    one is a failure; elsewhere (a bare `pytest`) the test is skipped."""
    if STAGED:
        pytest.fail(f"{what} (make test provides it)")
    pytest.skip(what)


def installed(path: str) -> str:
    """An installed file; skipped outside `make test`, a failure inside it."""
    if not os.path.exists(path):
        missing_prerequisite(f"{path} is not installed")
    return path


@pytest.fixture
def xen_agent():
    from xenha_lab.paths import default_agent
    return installed(default_agent("xen-domain"))


@pytest.fixture
def sim_hosts(tmp_path, xen_agent):
    """Two simulated Xen hosts, mk1 and mk2, as in the howto; all guests die afterwards."""
    from xenha_lab.paths import default_simbindir
    from xenha_lab.sim.xen.hosts import SimHosts

    installed(os.path.join(default_simbindir(), "xl"))
    hosts = SimHosts(tmp_path / "lab", ["mk1", "mk2"])
    try:
        yield hosts
    finally:
        hosts.cleanup()


@pytest.fixture
def shaolin_config(tmp_path) -> str:
    path = tmp_path / "shaolin.cfg"
    path.write_text(SHAOLIN_LEGACY, encoding="utf-8")
    return str(path)


@pytest.fixture
def shaolin_xl_config(tmp_path) -> str:
    path = tmp_path / "shaolin-xl.cfg"
    path.write_text(SHAOLIN_XL, encoding="utf-8")
    return str(path)


def need_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        missing_prerequisite(f"{name} is not installed")
    return found


def need_root() -> None:
    if os.geteuid() != 0:
        missing_prerequisite("needs root (loop devices, network namespaces, mounts)")


def pytest_ignore_collect(collection_path, config):
    """tests/real (QEMU nodes with real Xen and DRBD, many minutes) runs only under
    `make test-real`, which sets XENHA_REAL_TIER=1."""
    if collection_path.name == "real" and collection_path.parent.name == "tests":
        return os.environ.get("XENHA_REAL_TIER") != "1" or None
    return None
