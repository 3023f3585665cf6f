"""The agents' layering, read from the source: agents and handlers decide, drivers in
xenha.tools run the tools (no agent or handler imports the runner or starts a process),
and importing an agent loads no heavy standard-library module."""

import ast
import subprocess
import sys

import pytest

from conftest import REPO
from xenha.agents import AGENTS

LIB = REPO / "lib"
# Modules that start processes (or the one module of ours that does).
PROCESS_MODULES = ("subprocess", "multiprocessing", "pty", "asyncio", "xenha.tools.runner")
# os/posix functions that start or replace a process.
PROCESS_FUNCTIONS = {"system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp",
                     "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe",
                     "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe"}
# What an agent's import must not load (each costs milliseconds on every monitor).
HEAVY_MODULES = {"subprocess", "json", "re", "enum", "dataclasses", "typing", "os", "select", "importlib"}


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in PROCESS_MODULES)


def process_uses(source: str) -> list[str]:
    """Every import of a process-starting module and every call that starts a process."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if _forbidden(node.module) or _forbidden(full) or (
                        node.module in ("os", "posix") and alias.name in PROCESS_FUNCTIONS):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Attribute) and func.attr in PROCESS_FUNCTIONS
                    and isinstance(func.value, ast.Name) and func.value.id in ("os", "posix")):
                found.append(f"line {node.lineno}: {func.value.id}.{func.attr}()")
            named = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if named in ("__import__", "import_module") and node.args and isinstance(node.args[0], ast.Constant) \
                    and _forbidden(str(node.args[0].value)):
                found.append(f"line {node.lineno}: {named}({node.args[0].value!r})")
    return found


def agent_and_handler_modules():
    return sorted(p for folder in ("agents", "handlers") for p in (LIB / "xenha" / folder).glob("*.py"))


@pytest.mark.parametrize("path", agent_and_handler_modules(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_agents_and_handlers_talk_to_drivers_only(path):
    assert process_uses(path.read_text(encoding="utf-8")) == []


def test_the_source_check_finds_what_it_forbids():
    offending = """
import subprocess
from xenha.tools import runner
from xenha.tools.runner import run
import xenha.tools.runner as r
from os import system
import os, posix
os.posix_spawn("x", ["x"], {})
posix.fork()
__import__("subprocess")
"""
    assert len(process_uses(offending)) == 8
    assert process_uses("from xenha.tools import drbd\nimport os\nos.environ.get('PATH')\n") == []


def test_every_agent_and_handler_module_is_checked():
    names = {p.stem for p in agent_and_handler_modules()}
    assert {module.rpartition(".")[2] for module, _class in AGENTS.values()} <= names
    assert "resync_snapshot" in names


@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_importing_an_agent_loads_nothing_heavy(agent):
    module = AGENTS[agent][0]
    code = (f"import sys; sys.path.insert(0, {str(LIB)!r}); import {module}\n"
            f"print(sorted(set({sorted(HEAVY_MODULES)!r}) & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
