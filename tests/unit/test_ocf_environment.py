from xenha.ocf.environment import OcfEnvironment, is_true


def env(action="monitor", **variables):
    return OcfEnvironment(action, variables)


def test_probe_is_monitor_with_interval_zero_or_unset():
    assert env().is_probe
    assert env(OCF_RESKEY_CRM_meta_interval="0").is_probe
    assert not env(OCF_RESKEY_CRM_meta_interval="10000").is_probe
    assert env(OCF_RESKEY_CRM_meta_interval="10000").is_recurring_monitor
    assert not env("start").is_probe


def test_timeout_in_milliseconds():
    assert env(OCF_RESKEY_CRM_meta_timeout="20000").timeout_ms == 20000
    assert env().timeout_ms is None
    assert env(OCF_RESKEY_CRM_meta_timeout="garbage").timeout_ms is None


def test_check_level_from_either_variable():
    assert env().check_level == 0
    assert env(OCF_CHECK_LEVEL="10").check_level == 10
    assert env(OCF_RESKEY_OCF_CHECK_LEVEL="20").check_level == 20
    assert env(OCF_CHECK_LEVEL="10", OCF_RESKEY_OCF_CHECK_LEVEL="20").check_level == 10


def test_promotable_meta_reads_new_names_first_then_legacy():
    legacy = env(OCF_RESKEY_CRM_meta_master_max="2", OCF_RESKEY_CRM_meta_master_node_max="1",
                 OCF_RESKEY_CRM_meta_clone_max="2")
    assert (legacy.promoted_max, legacy.promoted_node_max, legacy.clone_max) == (2, 1, 2)
    assert legacy.is_clone and legacy.is_promotable
    both = env(OCF_RESKEY_CRM_meta_promoted_max="1", OCF_RESKEY_CRM_meta_master_max="2")
    assert both.promoted_max == 1
    assert not env().is_clone


def test_notify_lists_and_legacy_names():
    notify = env("notify", OCF_RESKEY_CRM_meta_notify_type="pre",
                 OCF_RESKEY_CRM_meta_notify_operation="promote",
                 OCF_RESKEY_CRM_meta_notify_promote_uname="mk2 ",
                 OCF_RESKEY_CRM_meta_notify_master_uname="mk1",
                 OCF_RESKEY_CRM_meta_notify_notify="true").notify()
    assert (notify.type, notify.operation) == ("pre", "promote")
    assert notify.names("promote_uname") == ["mk2"]
    assert notify.names("promoted_uname") == ["mk1"]
    assert notify.names("stop_uname") == []


def test_defaults_for_state_dir_and_exit_reason_prefix():
    plain = env()
    assert plain.rsctmp == "/run/resource-agents"
    assert plain.exit_reason_prefix == "ocf-exit-reason:"
    assert env(HA_RSCTMP="/tmp/x").rsctmp == "/tmp/x"


def test_meta_attribute_dashes_become_underscores():
    assert env(OCF_RESKEY_CRM_meta_allow_migrate="true").meta("allow-migrate") == "true"


def test_migration_nodes():
    moving = env("migrate_to", OCF_RESKEY_CRM_meta_migrate_source="mk1",
                 OCF_RESKEY_CRM_meta_migrate_target="mk2")
    assert (moving.migrate_source, moving.migrate_target) == ("mk1", "mk2")


def test_debug_is_the_string_one():
    assert env(HA_debug="1").debug
    assert not env(HA_debug="0").debug
    assert not env().debug


def test_is_true():
    assert is_true("Yes") and is_true(" on ") and not is_true("nope") and not is_true(None)
