"""Where the installed pieces are: the agents, the simulated tools, the packages.

Tests, the demo and the bench find the *installed* agents and simulators (a staged
`make install` under `make test`); the environment variables that `make` sets win.
"""

from __future__ import annotations

import os

OCF_ROOT = os.environ.get("OCF_ROOT", "/usr/lib/ocf")
# The PATH of a node's daemons (reference/lab.md: start nodes with exactly this).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def package_roots() -> list[str]:
    """The directories holding this package and `xenha` (the first on a child's sys.path)."""
    import xenha

    roots = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
             os.path.dirname(os.path.dirname(os.path.abspath(xenha.__file__)))]
    return list(dict.fromkeys(roots))


def child_code(statement: str) -> str:
    """Python source for `python3 -IS -c`: the packages importable, then `statement`."""
    return f"import sys; sys.path[:0] = {package_roots()!r}; {statement}"


def default_simbindir() -> str:
    """Where `make install-lab` put the simulated tools (next to this package)."""
    configured = os.environ.get("XENHA_SIMBINDIR")
    if configured:
        return configured
    return os.path.join(package_roots()[0], "sim-bin")


def default_agent(agent: str) -> str:
    """The installed agent executable `agent` of provider xenha."""
    provider = os.environ.get("XENHA_PROVIDER_DIR", os.path.join(OCF_ROOT, "resource.d", "xenha"))
    return os.path.join(provider, agent)
