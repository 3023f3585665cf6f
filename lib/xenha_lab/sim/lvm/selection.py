"""The selection language of libdevmapper reports (`dmsetup -S`, `lvs -S`), as far as
the simulator evaluates it itself.

Grammar (lvmreport(7) "Selection"): comparisons `field OP value` with OP one of
`=~ !~ = != >= > <= <`, joined by `&&` or `,` (and), `||` or `#` (or), negated by `!`,
grouped by parentheses. Values may be quoted with ' or ". Numbers compare numerically,
sizes with a unit suffix (k m g t p e, powers of 1024, as lvm's default units) by bytes,
everything else as strings; `=~` is a regular expression search.

Not supported (an `SelectionError` says so): list values in [] or {}, time values.
Standard library only, and `re` only when a regex is compared.
"""


class SelectionError(Exception):
    pass


OPERATORS = ("=~", "!~", "!=", ">=", "<=", "=", ">", "<")
UNITS = {"b": 1, "s": 512, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
         "p": 1 << 50, "e": 1 << 60}


def _tokens(text):
    i, n = 0, len(text)
    out = []
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if text.startswith("&&", i) or text.startswith("||", i):
            out.append(("op", text[i:i + 2]))
            i += 2
            continue
        if ch in ",#()":
            out.append(("op", {",": "&&", "#": "||"}.get(ch, ch)))
            i += 1
            continue
        if ch == "!" and not text.startswith("!=", i) and not text.startswith("!~", i):
            out.append(("op", "!"))
            i += 1
            continue
        for op in OPERATORS:
            if text.startswith(op, i):
                out.append(("cmp", op))
                i += len(op)
                break
        else:
            if ch in "'\"":
                end = text.find(ch, i + 1)
                if end < 0:
                    raise SelectionError("Selection syntax error: missing closing quote")
                out.append(("word", text[i + 1:end]))
                i = end + 1
                continue
            if ch in "[{":
                raise SelectionError("Selection: list values are not supported by the simulator")
            start = i
            while i < n and not text[i].isspace() and text[i] not in ",#()=!<>~&|":
                i += 1
            if start == i:
                raise SelectionError("Selection syntax error at '%s'" % text[i:])
            out.append(("word", text[start:i]))
    return out


def parse(text):
    """A selection tree: ("and"|"or", a, b) / ("not", a) / ("cmp", field, op, value)."""
    tokens = _tokens(text)
    pos = [0]

    def peek():
        return tokens[pos[0]] if pos[0] < len(tokens) else (None, None)

    def take():
        tok = peek()
        pos[0] += 1
        return tok

    def expr_or():
        node = expr_and()
        while peek() == ("op", "||"):
            take()
            node = ("or", node, expr_and())
        return node

    def expr_and():
        node = unary()
        while peek() == ("op", "&&"):
            take()
            node = ("and", node, unary())
        return node

    def unary():
        tok = peek()
        if tok == ("op", "!"):
            take()
            return ("not", unary())
        if tok == ("op", "("):
            take()
            node = expr_or()
            if take() != ("op", ")"):
                raise SelectionError("Selection syntax error: missing ')'")
            return node
        kind, field = take()
        if kind != "word":
            raise SelectionError("Selection syntax error: field name expected")
        kind, op = take()
        if kind != "cmp":
            raise SelectionError("Selection syntax error: operator expected after %s" % field)
        kind, value = take()
        if kind != "word":
            value = ""
            if kind is not None:
                pos[0] -= 1
        return ("cmp", field.lower(), op, value)

    if not tokens:
        return None
    node = expr_or()
    if pos[0] != len(tokens):
        raise SelectionError("Selection syntax error at token %r" % (tokens[pos[0]][1],))
    return node


def fields_of(node, acc=None):
    acc = set() if acc is None else acc
    if node is None:
        return acc
    if node[0] == "cmp":
        acc.add(node[1])
    else:
        for child in node[1:]:
            fields_of(child, acc)
    return acc


def _number(text):
    text = text.strip()
    if not text:
        return None
    if text[0] in "<>":
        text = text[1:]
    try:
        return float(text)
    except ValueError:
        pass
    unit = text[-1].lower()
    if unit in UNITS:
        try:
            return float(text[:-1]) * UNITS[unit]
        except ValueError:
            return None
    return None


def compare(actual, op, wanted, synonyms=None):
    if op in ("=~", "!~"):
        import re

        found = re.search(wanted, actual) is not None
        return found if op == "=~" else not found
    if synonyms and wanted in synonyms:
        wanted = synonyms[wanted]
    a, w = _number(actual), _number(wanted)
    if a is not None and w is not None:
        result = {"=": a == w, "!=": a != w, ">": a > w, ">=": a >= w, "<": a < w, "<=": a <= w}[op]
        return result
    if op == "=":
        return actual == wanted
    if op == "!=":
        return actual != wanted
    return {">": actual > wanted, ">=": actual >= wanted, "<": actual < wanted,
            "<=": actual <= wanted}[op]


def evaluate(node, row, resolve=None):
    """Whether `row` (a dict field -> string) matches. `resolve(field)` maps a field
    name as written to the row's key (aliases); an unknown field raises."""
    if node is None:
        return True
    kind = node[0]
    if kind == "and":
        return evaluate(node[1], row, resolve) and evaluate(node[2], row, resolve)
    if kind == "or":
        return evaluate(node[1], row, resolve) or evaluate(node[2], row, resolve)
    if kind == "not":
        return not evaluate(node[1], row, resolve)
    _, field, op, value = node
    key = resolve(field) if resolve else field
    if key is None or key not in row:
        raise SelectionError("Unrecognised selection field: %s" % field)
    actual = row[key]
    synonyms = None
    if isinstance(actual, tuple):      # (display value, {synonym: display value})
        actual, synonyms = actual
    return compare(actual, op, value, synonyms)
