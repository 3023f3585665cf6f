"""Typed agent parameters, declared once and used for parsing and for meta-data.

A `Parameter` knows its OCF content type, default, limits and documentation. Parsing
raw `OCF_RESKEY_*` strings gives plain Python values or an `OcfError` with code 6
(OCF_ERR_CONFIGURED: the value is invalid on every node) that names the parameter
and the value.
"""

from xenha.ocf import codes
from xenha.ocf.codes import OcfError

STRING = "string"
INTEGER = "integer"
BOOLEAN = "boolean"
SELECT = "select"

_TRUE = ("yes", "true", "1", "on")
_FALSE = ("no", "false", "0", "off")


class Parameter:
    """One instance attribute of an agent."""

    __slots__ = (
        "name", "type", "shortdesc", "longdesc", "default", "required", "unique_group",
        "reloadable", "options", "minimum", "maximum", "replaced_with", "deprecated_note",
        "private",
    )

    def __init__(self, name: str, type: str, shortdesc: str, longdesc: str, *,
                 default=None, required: bool = False, unique_group: str | None = None,
                 reloadable: bool = False, options: tuple[str, ...] = (),
                 minimum: int | None = None, maximum: int | None = None,
                 replaced_with: str | None = None, deprecated_note: str = "",
                 private: bool = False):
        if type == SELECT and not options:
            raise ValueError(f"select parameter {name} needs options")
        if type == SELECT and default is not None and default not in options:
            raise ValueError(f"default of {name} is not one of its options")
        self.name = name
        self.type = type
        self.shortdesc = shortdesc
        self.longdesc = longdesc
        self.default = default
        self.required = required
        self.unique_group = unique_group
        self.reloadable = reloadable
        self.options = options
        self.minimum = minimum
        self.maximum = maximum
        self.replaced_with = replaced_with
        self.deprecated_note = deprecated_note
        self.private = private

    @property
    def deprecated(self) -> bool:
        return self.replaced_with is not None or bool(self.deprecated_note)

    def default_text(self) -> str | None:
        """The default as meta-data shows it."""
        if self.default is None:
            return None
        if self.type == BOOLEAN:
            return "true" if self.default else "false"
        return str(self.default)

    def invalid(self, raw: str, why: str) -> OcfError:
        return OcfError(codes.ERR_CONFIGURED, f"parameter {self.name}={raw!r}: {why}")

    def parse(self, raw: str | None):
        """The typed value of `raw`; None or "" means unset and gives the default."""
        if raw is None or raw == "":
            return self.default
        if self.type == STRING:
            return raw
        text = raw.strip()
        if self.type == BOOLEAN:
            low = text.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            return self._raise(raw, "not a boolean (use true or false)")
        if self.type == INTEGER:
            digits = text[1:] if text[:1] in "+-" else text
            if not digits.isdigit() or not digits.isascii():
                return self._raise(raw, "not an integer")
            value = int(text)
            if self.minimum is not None and value < self.minimum:
                return self._raise(raw, f"must be at least {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                return self._raise(raw, f"must be at most {self.maximum}")
            return value
        if self.type == SELECT:
            if text in self.options:
                return text
            return self._raise(raw, "must be one of " + ", ".join(self.options))
        raise AssertionError(self.type)

    def _raise(self, raw: str, why: str):
        raise self.invalid(raw, why)


class ParameterValues:
    """The parsed parameters of one invocation: `values.name`, plus what went wrong.

    `errors` holds an OcfError per invalid parameter; invalid ones fall back to their
    default so that code which must carry on regardless (stop) still has a value.
    `deprecated_used` lists (old, new) names given through a deprecated alias.
    """

    __slots__ = ("_values", "errors", "deprecated_used", "given")

    def __init__(self, values: dict, errors: list[OcfError], deprecated_used, given):
        self._values = values
        self.errors = errors
        self.deprecated_used = deprecated_used
        self.given = given

    def __getattr__(self, name: str):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, name: str):
        return self._values.get(name)

    def is_given(self, name: str) -> bool:
        """Whether the user set the parameter (directly or through a deprecated alias)."""
        return name in self.given

    def raise_first_error(self) -> None:
        if self.errors:
            raise self.errors[0]


def parse_parameters(declared, reskey) -> ParameterValues:
    """Parse every declared parameter; `reskey(name)` returns the raw string or None.

    Deprecated parameters with `replaced_with` are aliases: their value is used for the
    new parameter when the new one is not set.
    """
    values, errors, deprecated_used, given = {}, [], [], set()
    by_name = {p.name: p for p in declared}
    for param in declared:
        if param.replaced_with is not None:
            continue
        raw = reskey(param.name)
        if raw in (None, ""):
            for alias in declared:
                if alias.replaced_with == param.name and reskey(alias.name) not in (None, ""):
                    raw = reskey(alias.name)
                    deprecated_used.append((alias.name, param.name))
                    break
        if raw not in (None, ""):
            given.add(param.name)
        try:
            values[param.name] = param.parse(raw)
        except OcfError as error:
            errors.append(error)
            values[param.name] = param.default
        if param.required and raw in (None, ""):
            errors.append(OcfError(codes.ERR_CONFIGURED, f"required parameter {param.name} is not set"))
    for param in declared:
        if param.replaced_with is not None and param.replaced_with not in by_name:
            raise ValueError(f"{param.name} is replaced by unknown {param.replaced_with}")
    return ParameterValues(values, errors, deprecated_used, given)
