"""The product installs apart from the development tooling: an installed agent cannot
import the simulators, and the product's directory holds no lab code."""

import os
import re
import subprocess

from conftest import installed
from xenha.agents import AGENTS
from xenha_lab.paths import default_agent


def launcher_prelude(path: str) -> tuple[list[str], str]:
    """The interpreter line's argv and the launcher's code up to its import of the agent."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    interpreter = lines[0][2:].split()
    prelude = []
    for line in lines[1:]:
        if re.match(r"from xenha\.agents\.\w+ import main", line):
            return interpreter, "\n".join(prelude)
        prelude.append(line)
    raise AssertionError(f"{path}: no import of the agent's main()")


def test_an_installed_agent_cannot_import_the_simulators():
    for agent in AGENTS:
        path = installed(default_agent(agent))
        interpreter, prelude = launcher_prelude(path)
        probe = prelude + (
            "\nimport importlib.util"
            "\nprint('agent', importlib.util.find_spec('xenha.agents') is not None)"
            "\nprint('lab', importlib.util.find_spec('xenha_lab') is not None)\n")
        proc = subprocess.run(interpreter + ["-c", probe], capture_output=True, text=True, timeout=30,
                              env={"PATH": "/usr/bin:/bin"})
        assert proc.returncode == 0, proc.stderr
        # the control: the same path finds the agent package, and not the lab's
        assert proc.stdout.split("\n")[:2] == ["agent True", "lab False"], (agent, proc.stdout)


def test_the_product_directory_holds_no_development_tooling():
    agent = installed(default_agent("xen-domain"))
    interpreter, prelude = launcher_prelude(agent)
    pylibdir = re.search(r'sys\.path\.insert\(0, "([^"]+)"\)', prelude).group(1)
    assert os.path.isdir(os.path.join(pylibdir, "xenha")), pylibdir
    assert sorted(os.listdir(pylibdir)) == ["examples", "xenha"], pylibdir
    assert not os.path.exists(os.path.join(pylibdir, "xenha", "sim"))


def test_every_registered_agent_and_only_those_is_installed():
    provider_dir = os.path.dirname(installed(default_agent("xen-domain")))
    assert sorted(os.listdir(provider_dir)) == sorted(AGENTS)
    for name, (module, _class) in AGENTS.items():
        with open(os.path.join(provider_dir, name), encoding="utf-8") as handle:
            assert f"from {module} import main" in handle.read()
