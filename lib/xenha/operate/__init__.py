"""Day-2 operations on a live cluster: status, migrate, drain/undrain, apply.

In pcs' manner, each operation is a library function taking an environment
(`env.Environment`: the only place that runs tools, locally or on a node through a
transport) and returning structured results; the decisions are pure functions of parsed
state (`state` parses crm_mon's XML, the CIB, DRBD's events2 and `xl list` into one
`ClusterView`); in Ganeti's manner, an operation that changes something checks its
prerequisites first (each failed check with its reason), then executes. The CLI
(`xenha.cli.operate`) is a thin layer on top.

    state.py     parsing and joining (pure): ClusterView, attention items, the status JSON
    env.py       Environment: Pacemaker tools here, node commands local or by root ssh
    status.py    gather(env) -> ClusterView
    migrate.py   preflight (pure) and move with a lifetime, wait, clear
    drain.py     plan from crm_simulate on the live CIB with standby applied; drain, undrain
    apply.py     diff of rendered vs live configuration (pure); one CIB transaction
"""
