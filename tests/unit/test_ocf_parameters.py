import pytest
from hypothesis import given, strategies as st

from xenha.ocf import codes
from xenha.ocf.codes import OcfError
from xenha.ocf.parameters import BOOLEAN, INTEGER, SELECT, STRING, Parameter, parse_parameters


def p(kind, **kw):
    return Parameter("x", kind, "short", "long", **kw)


@pytest.mark.parametrize("raw,value", [("yes", True), ("TRUE", True), ("1", True), ("on", True),
                                       ("no", False), ("False", False), ("0", False), ("off", False)])
def test_boolean_follows_ocf_is_true(raw, value):
    assert p(BOOLEAN).parse(raw) is value


def test_unset_and_empty_give_the_default():
    assert p(INTEGER, default=5).parse(None) == 5
    assert p(INTEGER, default=5).parse("") == 5
    assert p(STRING).parse(None) is None


@pytest.mark.parametrize("raw", ["abc", "1.5", "12s", "--1", "", " "])
def test_integer_rejects_non_numbers_with_code_6_naming_parameter_and_value(raw):
    if raw == "":
        return  # empty means unset
    with pytest.raises(OcfError) as failure:
        p(INTEGER).parse(raw)
    assert failure.value.code == codes.ERR_CONFIGURED
    assert "x=" in failure.value.reason and repr(raw) in failure.value.reason


@given(st.integers(min_value=-10**9, max_value=10**9))
def test_integer_roundtrip(number):
    assert p(INTEGER).parse(str(number)) == number


def test_integer_limits():
    param = p(INTEGER, minimum=0, maximum=10)
    assert param.parse("10") == 10
    with pytest.raises(OcfError, match="at least 0"):
        param.parse("-1")
    with pytest.raises(OcfError, match="at most 10"):
        param.parse("11")


def test_select_accepts_only_its_options():
    param = p(SELECT, options=("a", "b"), default="a")
    assert param.parse("b") == "b"
    with pytest.raises(OcfError, match="one of a, b"):
        param.parse("c")


def test_select_default_must_be_an_option():
    with pytest.raises(ValueError):
        p(SELECT, options=("a",), default="z")


def test_boolean_garbage_is_invalid():
    with pytest.raises(OcfError) as failure:
        p(BOOLEAN).parse("maybe")
    assert failure.value.code == codes.ERR_CONFIGURED


DECLARED = (
    Parameter("config", STRING, "s", "l", required=True),
    Parameter("xmfile", STRING, "s", "l", replaced_with="config"),
    Parameter("count", INTEGER, "s", "l", default=3),
)


def test_deprecated_alias_feeds_the_new_parameter():
    values = parse_parameters(DECLARED, {"xmfile": "/etc/xen/a.cfg"}.get)
    assert values.config == "/etc/xen/a.cfg"
    assert values.deprecated_used == [("xmfile", "config")]
    assert values.errors == []


def test_new_parameter_wins_over_alias():
    values = parse_parameters(DECLARED, {"xmfile": "/old", "config": "/new"}.get)
    assert values.config == "/new"
    assert values.deprecated_used == []


def test_invalid_values_fall_back_to_default_and_are_reported():
    values = parse_parameters(DECLARED, {"config": "/c", "count": "many"}.get)
    assert values.count == 3
    assert len(values.errors) == 1 and "count='many'" in values.errors[0].reason
    with pytest.raises(OcfError):
        values.raise_first_error()


def test_missing_required_parameter_is_an_error():
    values = parse_parameters(DECLARED, {}.get)
    assert [e.code for e in values.errors] == [codes.ERR_CONFIGURED]
    assert "config" in values.errors[0].reason
    assert not values.is_given("config")
