"""Run an agent the way pacemaker-execd runs it — the one place that knows how.

The executable from the provider directory, the action as argv[1], and an environment
without the caller's variables: the node's own (PATH, the simulators' state) plus what
Pacemaker 2.1.5 sets for one operation (reference/ocf-and-pacemaker.md §3, and
samples/pcmk_09_agent_env_from_crm_resource.txt): parameters in `OCF_RESKEY_name`, meta
attributes in `OCF_RESKEY_CRM_meta_name` (`-` becomes `_`), the operation's timeout and
interval in ms, the depth as the op attribute `OCF_RESKEY_OCF_CHECK_LEVEL`.

`HA_RSCTMP` is the one variable Pacemaker does not set (resource-agents defaults it to
/run/resource-agents): each simulated node gets its own, as each real node has its own /run.

The tests, the demo, the bench and the lab all build agent environments here, for our
agents and for the anchor agents alike.
"""

from __future__ import annotations

import subprocess
import time

from xenha_lab.paths import OCF_ROOT, default_agent

EXIT_REASON_PREFIX = "ocf-exit-reason:"
CRM_FEATURE_SET = "3.16.1"   # Pacemaker 2.1.5


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


def agent_env(base: dict, *, agent: str, instance: str, rsctmp: str, provider: str = "xenha",
              node: str | None = None, timeout_s: float = 20.0, interval_s: float | None = None,
              check_level: int | None = None, params=None, meta=None, extra=None) -> dict:
    """`base` (the node's PATH and simulator variables) plus what execd sets for one operation.

    `interval_s` None leaves the interval out (a one-off action); 0 is a probe. `extra`
    goes in last, as is (e.g. a broken PATH, CIB_file).
    """
    env = dict(base)
    env.update({
        "OCF_ROOT": OCF_ROOT, "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1",
        "OCF_RESOURCE_INSTANCE": instance, "OCF_RESOURCE_TYPE": agent, "OCF_RESOURCE_PROVIDER": provider,
        "OCF_EXIT_REASON_PREFIX": EXIT_REASON_PREFIX, "HA_RSCTMP": rsctmp, "HA_debug": "0",
        # execd passes the lower-case names; resource-agents' shell library reads HA_LOGFACILITY
        "HA_logfacility": "none", "PCMK_logfacility": "none", "HA_LOGFACILITY": "none",
        "OCF_RESKEY_crm_feature_set": CRM_FEATURE_SET,
        "OCF_RESKEY_CRM_meta_timeout": str(int(timeout_s * 1000)),
    })
    if node is not None:
        env["OCF_RESKEY_CRM_meta_on_node"] = node
    if interval_s is not None:
        env["OCF_RESKEY_CRM_meta_interval"] = str(int(interval_s * 1000))
    if check_level is not None:
        # an op attribute, so a parameter; ocf-shellfuncs copies it to OCF_CHECK_LEVEL
        env["OCF_RESKEY_OCF_CHECK_LEVEL"] = str(check_level)
    for key, value in (params or {}).items():
        env[f"OCF_RESKEY_{key}"] = str(value)
    for key, value in (meta or {}).items():
        env[f"OCF_RESKEY_CRM_meta_{key.replace('-', '_')}"] = str(value)
    env.update(extra or {})
    return env


def run_agent_process(node: str, agent: str, action: str, env: dict, timeout_s: float,
                      agent_path: str | None = None, prefix=()) -> AgentCall:
    """Run the agent with `env` (`prefix`: e.g. `ip netns exec NS`, the node's network);
    Pacemaker kills an agent at its timeout, and a few seconds more here catch hangs."""
    started = time.monotonic()
    proc = subprocess.run([*prefix, agent_path or default_agent(agent), action], env=env, capture_output=True,
                          text=True, timeout=timeout_s + 10)
    return AgentCall(node, action, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def run_agent(base: dict, node: str, agent: str, action: str, *, instance: str, rsctmp: str,
              provider: str = "xenha", params=None, meta=None, timeout_s: float = 20.0,
              interval_s: float | None = None, check_level: int | None = None, extra=None,
              agent_path: str | None = None, prefix=()) -> AgentCall:
    """`agent action` on `node` (whose environment is `base`), as pacemaker-execd runs it."""
    env = agent_env(base, agent=agent, instance=instance, rsctmp=rsctmp, provider=provider, node=node,
                    timeout_s=timeout_s, interval_s=interval_s, check_level=check_level, params=params,
                    meta=meta, extra=extra)
    return run_agent_process(node, agent, action, env, timeout_s, agent_path, prefix)
