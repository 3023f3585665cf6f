"""Gathering the live cluster's state (`xenha status`): crm_mon's XML and the CIB here,
DRBD and xl on every online node at once, joined by xenha.operate.state."""

from __future__ import annotations

from xenha.operate import state as S
from xenha.operate.env import Environment, OperationError

NODE_TIMEOUT = 15.0


def last_words(result) -> str:
    """A finished command's last line on stderr (else stdout, else its exit)."""
    for text in (result.stderr, result.stdout):
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return "timed out" if result.timed_out else f"exit {result.returncode}"


def crm_mon(env: Environment) -> S.CrmMon:
    result = env.run(["crm_mon", "--one-shot", "--inactive", "--output-as=xml"], 30.0)
    if not result.stdout.strip().startswith("<"):
        raise OperationError(f"crm_mon cannot show the cluster: {last_words(result)} "
                             "(is the cluster running on this node?)")
    try:
        mon = S.parse_crm_mon(result.stdout)
    except S.StateError as error:
        raise OperationError(str(error)) from None
    return mon


def cib_text(env: Environment) -> str:
    result = env.run(["cibadmin", "--query"], 30.0)
    if not result.ok:
        raise OperationError(f"cannot read the CIB: {last_words(result)}")
    return result.stdout


def cib(env: Environment) -> S.CibConfig:
    try:
        return S.parse_cib(cib_text(env))
    except S.StateError as error:
        raise OperationError(str(error)) from None


def node_facts(env: Environment, node: str, memory: bool = False) -> S.NodeFacts:
    """DRBD and xl on one node (and `xl info`'s free memory when asked)."""
    # one round trip: the tools' outputs apart by a marker line. DRBD 8.4's drbdsetup has
    # no `status --json` (usage, exit 20): its `events2 --now` is asked instead
    marker = "--xenha-status-8c1f--"
    script = (f"drbdsetup status --json; rc=$?; echo; echo {marker} $rc; "
              f"if [ $rc -ne 0 ]; then drbdsetup events2 --now all; rc=$?; echo; echo {marker} $rc; "
              f"else echo {marker} -; fi; xl list; echo {marker} $?"
              + (f"; xl info; echo {marker} $?" if memory else ""))
    try:
        result = env.on_node(node, ["sh", "-c", script], NODE_TIMEOUT)
    except OperationError as error:
        return S.NodeFacts(node, error=str(error))
    if result.timed_out:
        return S.NodeFacts(node, error=f"did not answer in {NODE_TIMEOUT:.0f} s")
    parts = result.stdout.split(marker)
    if len(parts) < (5 if memory else 4):
        return S.NodeFacts(node, error=f"cannot be asked: {last_words(result)}")
    codes = [p.split("\n", 1)[0].strip() for p in parts[1:]]
    texts = [parts[0]] + [p.split("\n", 1)[1] if "\n" in p else "" for p in parts[1:]]
    try:
        drbd = (S.parse_drbd_status(node, texts[0]) if codes[0] == "0" else
                S.parse_drbd_events2(node, texts[1]) if codes[1] == "0" else None)
        domains = S.parse_domains(texts[2]) if codes[2] == "0" else None
    except S.StateError as error:
        return S.NodeFacts(node, error=str(error))
    free = None
    if memory and codes[3] == "0":
        from xenha.tools.xl import parse_info

        value = parse_info(texts[3]).get("free_memory", "")
        free = int(value) if value.isdigit() else None
    drbd_code = codes[0] if codes[0] == "0" else codes[1]
    problems = [what for what, code in (("drbdsetup status", drbd_code), ("xl list", codes[2])) if code != "0"]
    error = f"{' and '.join(problems)} failed: {last_words(result)}" if problems else None
    return S.NodeFacts(node, drbd=drbd, domains=domains, free_memory_mib=free, error=error)


def gather(env: Environment, memory: bool = False) -> S.ClusterView:
    mon = crm_mon(env)
    config = cib(env)
    online = [n.name for n in mon.nodes.values() if n.online]
    answers = env.each_node(online, lambda node: node_facts(env, node, memory))
    facts = {node: (answer if isinstance(answer, S.NodeFacts) else S.NodeFacts(node, error=str(answer)))
             for node, answer in answers.items()}
    asked = None
    try:
        asked = env.local_node()
    except OperationError:
        pass
    return S.join(asked, mon, config, facts)
