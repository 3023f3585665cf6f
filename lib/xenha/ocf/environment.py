"""What Pacemaker (or ocf-tester, or crm_resource) tells an agent about one operation.

Everything arrives in environment variables; the action is argv[1]. This module turns
those strings into typed values once, so that agents never read `os.environ` directly.
"""

import posix

RSCTMP_DEFAULT = "/run/resource-agents"
EXIT_REASON_PREFIX_DEFAULT = "ocf-exit-reason:"
_META = "OCF_RESKEY_CRM_meta_"


def process_environ() -> dict:
    """This process's environment as a str dict (what `os.environ` gives, without
    importing `os`, which costs ~1 ms on every monitor under `python3 -S`)."""
    return {key.decode("utf-8", "surrogateescape"): value.decode("utf-8", "surrogateescape")
            for key, value in posix.environ.items()}


def is_true(value: str | None) -> bool:
    """ocf_is_true: yes/true/1/on, any case."""
    return value is not None and value.strip().lower() in ("yes", "true", "1", "on")


def _int(value: str | None, default: int | None = None) -> int | None:
    if value is None or value.strip() == "":
        return default
    try:
        return int(value.strip())
    except ValueError:
        return default


class NotifyInfo:
    """The `CRM_meta_notify_*` variables of a clone notification, as lists of names."""

    __slots__ = ("type", "operation", "lists")

    LIST_KEYS = (
        "start_resource", "start_uname", "stop_resource", "stop_uname",
        "promote_resource", "promote_uname", "demote_resource", "demote_uname",
        "active_resource", "active_uname", "inactive_resource",
        "promoted_resource", "promoted_uname", "unpromoted_resource", "unpromoted_uname",
        "available_uname", "all_uname", "all_hosts",
    )
    # Pacemaker 2.1 still passes the pre-2.1 names; read the new one first.
    LEGACY = {
        "promoted_resource": "master_resource", "promoted_uname": "master_uname",
        "unpromoted_resource": "slave_resource", "unpromoted_uname": "slave_uname",
    }

    def __init__(self, environ):
        self.type = environ.get(_META + "notify_type", "")
        self.operation = environ.get(_META + "notify_operation", "")
        self.lists = {}
        for key in self.LIST_KEYS:
            raw = environ.get(_META + "notify_" + key)
            if raw is None and key in self.LEGACY:
                raw = environ.get(_META + "notify_" + self.LEGACY[key])
            self.lists[key] = (raw or "").split()

    def names(self, key: str) -> list[str]:
        return self.lists[key]


class OcfEnvironment:
    """The typed view of one agent invocation's environment."""

    __slots__ = (
        "action", "environ", "instance", "resource_type", "provider", "timeout_ms",
        "interval_ms", "check_level", "rsctmp", "exit_reason_prefix", "on_node",
        "migrate_source", "migrate_target", "crm_feature_set",
    )

    def __init__(self, action: str, environ):
        self.action = action
        self.environ = environ
        get = environ.get
        self.instance = get("OCF_RESOURCE_INSTANCE", "")
        self.resource_type = get("OCF_RESOURCE_TYPE", "")
        self.provider = get("OCF_RESOURCE_PROVIDER", "")
        self.timeout_ms = _int(get(_META + "timeout"))
        # Interval 0 or unset on a monitor means probe.
        self.interval_ms = _int(get(_META + "interval"), 0)
        # ocf-shellfuncs copies the op attribute OCF_RESKEY_OCF_CHECK_LEVEL to OCF_CHECK_LEVEL.
        level = get("OCF_CHECK_LEVEL")
        if level is None or level.strip() == "":
            level = get("OCF_RESKEY_OCF_CHECK_LEVEL")
        self.check_level = _int(level, 0)
        self.rsctmp = get("HA_RSCTMP") or RSCTMP_DEFAULT
        self.exit_reason_prefix = get("OCF_EXIT_REASON_PREFIX") or EXIT_REASON_PREFIX_DEFAULT
        self.on_node = get(_META + "on_node", "")
        self.migrate_source = get(_META + "migrate_source", "")
        self.migrate_target = get(_META + "migrate_target", "")
        self.crm_feature_set = get("OCF_RESKEY_crm_feature_set", "")

    # --- operation -------------------------------------------------------------------
    @property
    def is_probe(self) -> bool:
        return self.action == "monitor" and self.interval_ms == 0

    @property
    def is_recurring_monitor(self) -> bool:
        return self.action == "monitor" and self.interval_ms > 0

    def meta(self, name: str) -> str | None:
        """A resource meta attribute as Pacemaker passes it (`-` becomes `_`)."""
        return self.environ.get(_META + name.replace("-", "_"))

    def reskey(self, name: str) -> str | None:
        """An instance attribute (`OCF_RESKEY_<name>`), raw."""
        return self.environ.get("OCF_RESKEY_" + name)

    # --- clones ----------------------------------------------------------------------
    @property
    def is_clone(self) -> bool:
        return self.meta("clone_max") is not None

    @property
    def is_promotable(self) -> bool:
        return is_true(self.meta("promotable")) or (self.promoted_max or 0) > 0

    @property
    def clone_max(self) -> int | None:
        return _int(self.meta("clone_max"))

    @property
    def clone_node_max(self) -> int | None:
        return _int(self.meta("clone_node_max"))

    @property
    def promoted_max(self) -> int | None:
        value = _int(self.meta("promoted_max"))
        return value if value is not None else _int(self.meta("master_max"))

    @property
    def promoted_node_max(self) -> int | None:
        value = _int(self.meta("promoted_node_max"))
        return value if value is not None else _int(self.meta("master_node_max"))

    @property
    def notify_enabled(self) -> bool:
        return is_true(self.meta("notify"))

    def notify(self) -> NotifyInfo:
        return NotifyInfo(self.environ)

    # --- logging ---------------------------------------------------------------------
    @property
    def debug(self) -> bool:
        # Pacemaker exports HA_debug as the *string* "0" or "1".
        return self.environ.get("HA_debug", "0").strip() == "1"
