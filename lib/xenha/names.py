"""What a name may be, for each tool that will carry it.

A VM's name becomes an xl domain name, part of an LV name, a DRBD resource name and
Pacemaker ids; a node's name a DRBD `on` section and a Pacemaker node. Each check here
states one tool's rule (verified against the tool itself: lvm2 2.03.16, drbd-utils 9.22,
Pacemaker's CIB schema, xl's migration names) narrowed to plain ASCII, so that a name
can never look like another one (no look-alike Unicode) and never reaches a parser that
reads it differently. The description refuses names with its file and key; the agents
can refuse the same names in their parameters.

Every check returns None for a good value, else why it is refused (a phrase that reads
after the value: "'a--incoming' is ..."). Standard library only and cheap to import:
the agents import it on every operation.
"""

LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = LOWER.upper()
DIGITS = "0123456789"
LETTERS = frozenset(LOWER + UPPER)
ALNUM = frozenset(LOWER + UPPER + DIGITS)

# The names every identity (VM, cluster) is made of: a letter first, then letters,
# digits, _ and -. At most 48 characters, so that prefixed LV names, their resync
# snapshots (+"-before-resync") and Pacemaker ids (+"-clone", "order-...-then-...")
# stay well inside every tool's limit.
IDENTITY_CHARS = frozenset(LOWER + UPPER + DIGITS + "_-")
IDENTITY_MAX = 48

# xl (Xen 4.17): names it gives a domain's copies during a live migration, and dom0.
XL_MIGRATION_SUFFIXES = ("--incoming", "--migratedaway")
XL_DOM0 = "domain-0"
DOMAIN_CHARS = frozenset(LOWER + UPPER + DIGITS + "_.-")
DOMAIN_MAX = 64

# lvm2 (lvm(8) "VALID NAMES", and what lvcreate 2.03.16 refuses): the characters, the
# names and prefixes it keeps for itself, and the strings its internal LVs carry
# (_vcorig is reserved by newer lvm2 releases; refusing it costs nothing).
LVM_CHARS = frozenset(LOWER + UPPER + DIGITS + "+_.-")
LVM_NAME_MAX = 127
LVM_RESERVED_PREFIXES = ("snapshot", "pvmove")
LVM_RESERVED_PARTS = ("_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_imeta", "_iorig", "_mimage",
                      "_mlog", "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vcorig", "_vdata",
                      "_vorigin", "_wcorig")

# drbdadm reads a resource name as one word of at most 128 bytes made of these
# characters ("+" and ":" end the word; all digits is read as a number); the kernel
# refuses "/", "." and "..".
DRBD_CHARS = frozenset(LOWER + UPPER + DIGITS + "_.-")
DRBD_NAME_MAX = 127
# What drbdadm reads as one unquoted word (a path such as `disk /dev/vg0/lv;`): "+",
# ":", "=", "@", "," and the like end it.
DRBD_WORD_CHARS = frozenset(LOWER + UPPER + DIGITS + "_.-/")
# verify-alg, csums-alg: a kernel crypto hash name, one word (drbdadm: < 64 bytes).
CRYPTO_CHARS = frozenset(LOWER + UPPER + DIGITS + "_-")
CRYPTO_MAX = 63

# Words pcs reads as keywords where a resource or node name stands in its argv
# (`constraint colocation add A with Promoted B`, `order promote A then start B`,
# `resource create A ... op ... meta ...`); a VM or node with such a name would be misread.
PCS_KEYWORDS = frozenset((
    "with", "then", "start", "stop", "promote", "demote", "promoted", "unpromoted", "started",
    "stopped", "master", "slave", "op", "meta", "clone", "promotable", "bundle", "group", "options",
    "id", "score", "kind", "symmetrical", "role", "rsc-role", "with-rsc-role", "prefers", "avoids",
    "rule", "node", "lifetime", "set", "sequential", "require-all", "action", "setoptions", "resource",
    "constraint", "and", "or", "not", "defined", "date", "expression", "all", "none", "true", "false"))

# A Pacemaker id is an XML ID, an NCName; here its ASCII part.
ID_FIRST = frozenset(LOWER + UPPER + "_")
ID_CHARS = frozenset(LOWER + UPPER + DIGITS + "_.-")

# Host names (RFC 1123 labels): nodes are single labels, migration addresses may be
# dotted names.
HOST_CHARS = frozenset(LOWER + UPPER + DIGITS + "-")
LABEL_MAX = 63
HOSTNAME_MAX = 253

# Paths written into DRBD files, xl configs and agent parameters: absolute, made of
# plain components; no quoting is ever needed (no space, quote, comma, =, ;, $, ...).
PATH_CHARS = frozenset(LOWER + UPPER + DIGITS + "_.+-")
PATH_MAX = 1024

# Linux network interface names (the bridge of a vif): IFNAMSIZ - 1.
IFNAME_CHARS = frozenset(LOWER + UPPER + DIGITS + "_.-")
IFNAME_MAX = 15


def _not_text(value) -> str | None:
    if not isinstance(value, str):
        return f"is not a string ({type(value).__name__})"
    if not value:
        return "is empty"
    return None


def _bad_chars(value: str, allowed: frozenset, what: str) -> str | None:
    bad = [c for c in value if c not in allowed]
    if bad:
        shown = ", ".join(ascii(c) for c in dict.fromkeys(bad))
        return f"has characters {what} refuses: {shown}" + (" (ASCII only)" if any(ord(c) > 127 for c in bad) else "")
    return None


def _too_long(value: str, limit: int) -> str | None:
    return f"is longer than {limit} characters" if len(value) > limit else None


def _made_of(value, allowed: frozenset, what: str, limit: int) -> str | None:
    """A non-empty string of the allowed characters, at most `limit` long."""
    return _not_text(value) or _bad_chars(value, allowed, what) or _too_long(value, limit)


def check_identity(value) -> str | None:
    """A VM or cluster name: the one rule every tool that carries it accepts."""
    why = _not_text(value)
    if why:
        return why
    if value[0] not in LETTERS:
        return "must start with an ASCII letter"
    return (_bad_chars(value, IDENTITY_CHARS, "a name (letters, digits, _ and -)")
            or _too_long(value, IDENTITY_MAX) or check_domain_name(value) or _pcs_keyword(value))


def _pcs_keyword(value: str) -> str | None:
    if value.lower() in PCS_KEYWORDS:
        return "is a word pcs reads as a keyword in its commands"
    return None


def check_domain_name(value) -> str | None:
    """An xl domain name that is no other domain's: not dom0, not a migration copy's
    name, not a number (xl would read it as a domain id)."""
    why = _made_of(value, DOMAIN_CHARS, "xl", DOMAIN_MAX)
    if why:
        return why
    if value[0] in "-.":
        return f"must not start with {value[0]!r}"
    return check_other_domain(value)


def check_other_domain(value: str) -> str | None:
    """Why xl reads `value` as another domain than one of that name (dom0, a migration
    copy, a domain id), whatever its characters; None when it does not."""
    if value.lower() == XL_DOM0:
        return "is the name of dom0"
    for suffix in XL_MIGRATION_SUFFIXES:
        if value.endswith(suffix):
            return f"ends with {suffix!r}, the name xl gives a domain's copy during a live migration"
    if value and all(c in DIGITS for c in value):
        return "is a number, which xl reads as a domain id"
    return None


def check_lv_name(value) -> str | None:
    """An LVM logical volume name lvcreate accepts: a VG name's rule, and none of the
    names LVM gives its own volumes."""
    why = check_vg_name(value)
    if why:
        return why
    for prefix in LVM_RESERVED_PREFIXES:
        if value.startswith(prefix):
            return f"starts with {prefix!r}, reserved by LVM"
    for part in LVM_RESERVED_PARTS:
        if part in value:
            return f"contains {part!r}, reserved by LVM for its internal volumes"
    return None


def check_vg_name(value) -> str | None:
    """An LVM volume group name (also a directory in /dev)."""
    why = _made_of(value, LVM_CHARS, "LVM", LVM_NAME_MAX)
    if why:
        return why
    if value in (".", ".."):
        return "is reserved by LVM"
    if value[0] == "-":
        return "must not start with '-'"
    return None


def check_drbd_resource_name(value) -> str | None:
    """A DRBD resource name drbdadm reads as one word and the kernel accepts."""
    why = _made_of(value, DRBD_CHARS, "drbdadm", DRBD_NAME_MAX)
    if why:
        return why
    if value[0] in "-.":
        return f"must not start with {value[0]!r}"
    if all(c in DIGITS for c in value):
        return "is a number, which drbdadm does not read as a name"
    if value == "all":
        return "is what drbdadm reads as every resource"
    return None


def check_drbd_word(value) -> str | None:
    """A value drbdadm reads as one word without quotes (a device path), not a number."""
    why = _made_of(value, DRBD_WORD_CHARS, "drbdadm (unquoted)", DRBD_NAME_MAX)
    if why:
        return why
    if all(c in DIGITS for c in value):
        return "is a number, which drbdadm does not read as a word"
    return None


def check_crypto_name(value) -> str | None:
    """A kernel crypto algorithm name for DRBD (verify-alg)."""
    why = _not_text(value)
    if why:
        return why
    if value[0] not in LETTERS:
        return "must start with an ASCII letter"
    return _bad_chars(value, CRYPTO_CHARS, "drbdadm") or _too_long(value, CRYPTO_MAX)


def check_pacemaker_id(value) -> str | None:
    """A Pacemaker id (an XML NCName, ASCII)."""
    why = _not_text(value)
    if why:
        return why
    if value[0] not in ID_FIRST:
        return "must start with a letter or '_' (an XML id)"
    return _bad_chars(value, ID_CHARS, "an XML id")


def _check_label(value: str) -> str | None:
    why = _bad_chars(value, HOST_CHARS, "a host name (letters, digits and -)") or _too_long(value, LABEL_MAX)
    if why:
        return why
    if value[0] == "-" or value[-1] == "-":
        return "must not start or end with '-'"
    return None


def check_node_name(value) -> str | None:
    """A cluster node's name: a host name without a domain, as `uname -n` gives it."""
    why = _not_text(value) or _check_label(value)
    if why:
        return why
    if all(c in DIGITS for c in value):
        return "is a number, not a host name"
    return _pcs_keyword(value)


def check_hostname(value) -> str | None:
    """A DNS host name (dotted labels); an IP address is checked by the caller."""
    why = _not_text(value) or _too_long(value, HOSTNAME_MAX)
    if why:
        return why
    labels = value.split(".")
    for label in labels:
        if not label:
            return "has an empty label"
        why = _check_label(label)
        if why:
            return why
    if all(c in DIGITS for c in labels[-1]):
        return "is neither an IP address nor a host name"
    return None


def check_absolute_path(value) -> str | None:
    """An absolute path of plain components: no `.`/`..`, no empty component, nothing a
    config file or a shell would read specially."""
    why = _not_text(value)
    if why:
        return why
    if value[0] != "/":
        return "is not an absolute path"
    why = _too_long(value, PATH_MAX)
    if why:
        return why
    if value == "/":
        return None
    for part in value[1:].split("/"):
        if not part:
            return "has an empty path component (// or a trailing /)"
        if part in (".", ".."):
            return f"has a {part!r} component"
        why = _bad_chars(part, PATH_CHARS, "a path (letters, digits, _ . + -)")
        if why:
            return why
    return None


def check_command(value) -> str | None:
    """A program: an absolute path, or a name looked up on PATH."""
    why = _not_text(value)
    if why:
        return why
    if value[0] == "/":
        return check_absolute_path(value)
    if value[0] in "-.":
        return f"must not start with {value[0]!r}"
    return _bad_chars(value, PATH_CHARS, "a program name (letters, digits, _ . + -)")


def check_interface_name(value) -> str | None:
    """A Linux network interface name (a bridge)."""
    why = _made_of(value, IFNAME_CHARS, "an interface name (letters, digits, _ . -)", IFNAME_MAX)
    if why:
        return why
    if value[0] in "-.":
        return f"must not start with {value[0]!r}"
    return None


def check_line(value, limit: int = 4096) -> str | None:
    """Free text on one line (a description, a password): printable, no control
    characters, no line or paragraph separators."""
    if not isinstance(value, str):
        return f"is not a string ({type(value).__name__})"
    if not value.isprintable():
        bad = ", ".join(ascii(c) for c in dict.fromkeys(c for c in value if not c.isprintable()))
        return f"has unprintable characters {bad}"
    return _too_long(value, limit)


def check_ascii_line(value, refused: str = "", limit: int = 4096) -> str | None:
    """Printable ASCII text on one line, without the characters in `refused`."""
    why = check_line(value, limit)
    if why:
        return why
    bad = list(dict.fromkeys(c for c in value if ord(c) > 126 or c in refused))
    if bad:
        return f"has characters that cannot be written here: {', '.join(ascii(c) for c in bad)}" + (
            " (ASCII only)" if any(ord(c) > 126 for c in bad) else "")
    return None
