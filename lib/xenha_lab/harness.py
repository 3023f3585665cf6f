"""Run an installed agent the way pacemaker-execd runs it.

The executable from the provider directory, the action as argv[1], parameters in
`OCF_RESKEY_name`, meta attributes in `OCF_RESKEY_CRM_meta_name`, the operation's
timeout and interval, `HA_RSCTMP`, and an environment without the caller's variables.
"""

from __future__ import annotations

import subprocess
import time

from xenha_lab.paths import OCF_ROOT, default_agent

EXIT_REASON_PREFIX = "ocf-exit-reason:"


def exit_reason(stderr: str) -> str | None:
    """The last exit reason an agent printed (as pacemaker-execd keeps it), or None."""
    reason = None
    for line in stderr.splitlines():
        if line.startswith(EXIT_REASON_PREFIX):
            reason = line[len(EXIT_REASON_PREFIX):]
    return reason


class AgentCall:
    """One agent invocation and its outcome."""

    __slots__ = ("node", "action", "rc", "stdout", "stderr", "seconds")

    def __init__(self, node, action, rc, stdout, stderr, seconds):
        self.node, self.action, self.rc = node, action, rc
        self.stdout, self.stderr, self.seconds = stdout, stderr, seconds

    @property
    def exit_reason(self) -> str | None:
        return exit_reason(self.stderr)

    def __repr__(self) -> str:
        return f"AgentCall({self.node} {self.action} rc={self.rc} reason={self.exit_reason!r})"


def agent_env(base: dict, *, agent: str, instance: str, rsctmp: str, node: str | None = None,
              timeout_s: float = 20.0, interval_s: float | None = None, check_level: int | None = None,
              params=None, meta=None, extra=None) -> dict:
    """`base` (the node's PATH and simulator variables) plus what execd sets for one operation."""
    env = dict(base)
    env.update({
        "OCF_ROOT": OCF_ROOT, "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1",
        "OCF_RESOURCE_INSTANCE": instance, "OCF_RESOURCE_TYPE": agent,
        "OCF_RESOURCE_PROVIDER": "xenha", "OCF_EXIT_REASON_PREFIX": EXIT_REASON_PREFIX,
        "HA_RSCTMP": rsctmp, "HA_debug": "0", "HA_LOGFACILITY": "none",
        "OCF_RESKEY_crm_feature_set": "3.16.1",
        "OCF_RESKEY_CRM_meta_timeout": str(int(timeout_s * 1000)),
    })
    if node is not None:
        env["OCF_RESKEY_CRM_meta_on_node"] = node
    if interval_s is not None:
        env["OCF_RESKEY_CRM_meta_interval"] = str(int(interval_s * 1000))
    if check_level is not None:
        env["OCF_CHECK_LEVEL"] = str(check_level)
    for key, value in (params or {}).items():
        env[f"OCF_RESKEY_{key}"] = str(value)
    for key, value in (meta or {}).items():
        env[f"OCF_RESKEY_CRM_meta_{key.replace('-', '_')}"] = str(value)
    env.update(extra or {})
    return env


def run_agent_process(node: str, agent: str, action: str, env: dict, timeout_s: float,
                      agent_path: str | None = None) -> AgentCall:
    """Run the agent with `env`; Pacemaker kills an agent at its timeout, and a few
    seconds more here catch hangs."""
    started = time.monotonic()
    proc = subprocess.run([agent_path or default_agent(agent), action], env=env, capture_output=True,
                          text=True, timeout=timeout_s + 10)
    return AgentCall(node, action, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
