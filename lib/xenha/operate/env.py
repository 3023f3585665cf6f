"""The environment operations run in: the only place that runs tools.

`xenha` runs as root on a cluster node: Pacemaker's tools (crm_mon, cibadmin,
crm_resource, crm_attribute, crm_simulate, pcs) run here against the live cluster; what
only a node itself can tell (DRBD, xl) runs on that node, here when it is this node,
else through a transport (root ssh by default, as `xl migrate` uses it; tests and the
lab may pass their own object with the same `run(node, argv, timeout, input)` method).
"""

from __future__ import annotations

import os
import threading

from xenha.tools import runner

TIMEOUT = 30.0


class OperationError(Exception):
    """An operation cannot go on; the message is one line with what to do. `code` is the
    CLI's exit code (1 failed, 2 bad input, 3 needs attention)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class Environment:
    def __init__(self, transport=None, local_node: str | None = None, environ=None):
        self.environ = dict(os.environ if environ is None else environ)
        self._transport = transport
        self._local = local_node

    # --- where we are -------------------------------------------------------------------------------------------
    def local_node(self) -> str:
        """This node's cluster name (`crm_node -n`, else the host name)."""
        if self._local is None:
            try:
                result = runner.run(["crm_node", "-n"], 10.0, env=self.environ)
                name = result.stdout.strip() if result.ok else ""
            except runner.ToolNotFound:
                name = ""
            self._local = name or os.uname().nodename
        return self._local

    @property
    def transport(self):
        if self._transport is None:
            from xenha.provision.cluster import SshTransport

            self._transport = SshTransport(ssh=self.environ.get(
                "XENHA_SSH", "ssh -o BatchMode=yes -o ConnectTimeout=5"))
        return self._transport

    # --- running -------------------------------------------------------------------------------------------------
    def run(self, argv, timeout: float = TIMEOUT, cib_file: str | None = None, input: str | None = None):
        """A tool here (runner.CommandResult); OperationError when it is not installed."""
        env = dict(self.environ)
        if cib_file:
            env["CIB_file"] = cib_file
        try:
            return runner.run(list(argv), timeout, env=env,
                              stdin=input.encode() if input is not None else None)
        except runner.ToolNotFound:
            raise OperationError(f"{argv[0]} is not installed here: run xenha on a cluster node") from None

    def check(self, argv, timeout: float = TIMEOUT, cib_file: str | None = None, input: str | None = None):
        """run(), OperationError unless it succeeded."""
        result = self.run(argv, timeout, cib_file, input)
        if not result.ok:
            raise OperationError(f"`{' '.join(argv)}` failed: {result.said()}")
        return result

    def on_node(self, node: str, argv, timeout: float = TIMEOUT, input: str | None = None):
        """A command on `node`: here when it is this node, else through the transport."""
        if node == self.local_node():
            return self.run(argv, timeout, input=input)
        return self.transport.run(node, list(argv), timeout=timeout, input=input)

    def each_node(self, nodes, work) -> dict:
        """{node: work(node)} run on every node at once; an exception becomes the value."""
        results = {}

        def one(node):
            try:
                results[node] = work(node)
            except Exception as error:  # noqa: BLE001 - reported as that node's answer
                results[node] = error
        threads = [threading.Thread(target=one, args=(node,), name=f"xenha {node}") for node in nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results
