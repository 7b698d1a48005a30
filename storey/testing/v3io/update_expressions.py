"""The expressions of the V3IO web API, as far as storey's drivers use them: update expressions
(UpdateItem), condition expressions (UpdateItem, PutItem) and filter expressions (GetItems).

    update     := action (';' action)* [';']
    action     := ['SET'] target '=' expr | 'REMOVE' name (',' name)* | 'delete' '(' name ')'
    target     := name ['[' expr ['..' expr] ']']
    expr       := or ; or := and ('or' and)* ; and := not ('and' not)* ; not := 'not' not | compare
    compare    := sum [('==' | '!=' | '<>' | '<' | '<=' | '>' | '>=') sum]
    sum        := product (('+' | '-') product)* ; product := unary (('*' | '/') unary)*
    unary      := '-' unary | primary
    primary    := number | secs:nsecs | 'text' | true | false | inf | nan | name
                | name '[' expr ['..' expr] ']' | function '(' expr, ... ')' | '(' expr ')'

Names are attribute names (`__mtime_secs`, `__mtime_nsecs` and `__name` among them); a name that
is a keyword or a function name is written between backticks. Functions: if_else(c, a, b),
if_not_exists(name, default), exists(name), init_array(n, 'double'|'long', value), min, max,
isnan, blob('base64'), pmin/pmax/psum(slice, array), length(name), starts/ends/contains(name,
'text'). Arrays are indexed from 0; `a[i..j]` is the slice from i to j, both included.

A malformed expression raises `ExpressionError` (the request then fails with the platform's
invalid-argument error); in an update, reading an attribute the item does not have is such an
error, in a condition or a filter it makes the comparison false.
"""

import base64
import math
import re

from .typed_values import Array, Timestamp, TypedValueError, array_of_blob

__all__ = ["ExpressionError", "apply_update", "evaluate_condition", "parse_condition", "parse_update"]


class ExpressionError(ValueError):
    """An expression the web API does not accept."""


_TOKEN = re.compile(
    r"""\s*(?:
    (?P<ts>\d+:\d+)
    |(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    |(?P<string>'[^']*')
    |(?P<quoted>`[^`]+`)
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>\.\.|==|!=|<>|<=|>=|&&|\|\||[-+*/<>=()\[\],;])
    )""",
    re.VERBOSE,
)

_KEYWORDS = {"and", "or", "not", "true", "false", "inf", "nan", "set", "remove"}
_FUNCTIONS = {
    "if_else",
    "if_not_exists",
    "exists",
    "init_array",
    "min",
    "max",
    "isnan",
    "blob",
    "pmin",
    "pmax",
    "psum",
    "length",
    "starts",
    "ends",
    "contains",
    "delete",
}


def _tokens(text):
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, got {text!r}")
    out = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"unexpected {text[position : position + 20]!r} at {position} in {text!r}")
        position = match.end()
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "name" and value.lower() in _KEYWORDS:
            kind, value = "keyword", value.lower()
        elif kind == "quoted":
            kind, value = "name", value[1:-1]
        elif kind == "op":
            value = {"&&": "and", "||": "or", "<>": "!="}.get(value, value)
            if value in ("and", "or"):
                kind = "keyword"
        out.append((kind, value))
    return out


class _Parser:
    def __init__(self, text):
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self, offset=0):
        i = self.i + offset
        return self.tokens[i] if i < len(self.tokens) else (None, None)

    def take(self):
        token = self.peek()
        self.i += 1
        return token

    def expect(self, value):
        kind, got = self.take()
        if got != value or kind == "string":
            found = "the end" if kind is None else repr(got)
            raise ExpressionError(f"expected {value!r}, got {found} in {self.text!r}")

    def at(self, value):
        kind, got = self.peek()
        return got == value and kind in ("op", "keyword")

    def done(self):
        return self.i >= len(self.tokens)

    # ---- updates
    def update(self):
        actions = []
        while not self.done():
            if self.at(";"):
                self.take()
                continue
            actions.append(self.action())
            if not self.done():
                self.expect(";")
        if not actions:
            raise ExpressionError("an update expression must hold an action")
        return actions

    def action(self):
        kind, value = self.peek()
        if kind == "keyword" and value == "remove":
            self.take()
            names = [self.name()]
            while self.at(","):
                self.take()
                names.append(self.name())
            return ("remove", names)
        if kind == "keyword" and value == "set":
            self.take()
        elif kind == "name" and value == "delete" and self.peek(1)[1] == "(":
            self.take()
            self.expect("(")
            name = self.name()
            self.expect(")")
            return ("remove", [name])
        name = self.name()
        index = None
        if self.at("["):
            index = self.index()
        self.expect("=")
        return ("set", name, index, self.expr())

    def name(self):
        kind, value = self.take()
        if kind != "name":
            raise ExpressionError(f"expected an attribute name, got {value!r} in {self.text!r}")
        return value

    def index(self):
        self.expect("[")
        start = self.expr()
        end = None
        if self.at(".."):
            self.take()
            end = self.expr()
        self.expect("]")
        return (start, end)

    # ---- expressions
    def expr(self):
        left = self.conjunction()
        while self.at("or"):
            self.take()
            left = ("or", left, self.conjunction())
        return left

    def conjunction(self):
        left = self.negation()
        while self.at("and"):
            self.take()
            left = ("and", left, self.negation())
        return left

    def negation(self):
        if self.at("not"):
            self.take()
            return ("not", self.negation())
        return self.comparison()

    def comparison(self):
        left = self.sum()
        kind, value = self.peek()
        if kind == "op" and value in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            return ("compare", value, left, self.sum())
        if kind == "op" and value == "=":
            raise ExpressionError(f"'=' assigns; compare with '==' in {self.text!r}")
        return left

    def sum(self):
        left = self.product()
        while self.at("+") or self.at("-"):
            _, op = self.take()
            left = ("arith", op, left, self.product())
        return left

    def product(self):
        left = self.unary()
        while self.at("*") or self.at("/"):
            _, op = self.take()
            left = ("arith", op, left, self.unary())
        return left

    def unary(self):
        if self.at("-"):
            self.take()
            return ("neg", self.unary())
        return self.primary()

    def primary(self):
        kind, value = self.take()
        if kind == "number":
            return ("const", float(value) if any(c in value for c in ".eE") else int(value))
        if kind == "ts":
            secs, nsecs = value.split(":")
            if int(nsecs) >= 10**9:
                raise ExpressionError(f"nanoseconds out of range in the timestamp {value!r}")
            return ("const", Timestamp(int(secs), int(nsecs)))
        if kind == "string":
            return ("const", value[1:-1])
        if kind == "keyword" and value in ("true", "false"):
            return ("const", value == "true")
        if kind == "keyword" and value == "inf":
            return ("const", math.inf)
        if kind == "keyword" and value == "nan":
            return ("const", math.nan)
        if kind == "op" and value == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if kind == "name":
            if self.at("(") and value in _FUNCTIONS:
                self.take()
                args = []
                if not self.at(")"):
                    args.append(self.expr())
                    while self.at(","):
                        self.take()
                        args.append(self.expr())
                self.expect(")")
                return ("call", value, args)
            if self.at("["):
                return ("index", value, self.index())
            return ("attr", value)
        raise ExpressionError(f"unexpected {'end' if kind is None else repr(value)} in {self.text!r}")


def parse_update(text):
    """The actions of an update expression."""
    return _Parser(text).update()


def parse_condition(text):
    """The expression tree of a condition or filter (None for an empty one: always true)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    parser = _Parser(text)
    tree = parser.expr()
    if not parser.done():
        raise ExpressionError(f"unexpected {parser.peek()[1]!r} in {text!r}")
    return tree


class _Missing(Exception):
    """An attribute the item does not have (in a condition: the comparison is false)."""


class _Scope:
    def __init__(self, attributes, system, strict):
        self.attributes = attributes
        self.system = system
        self.strict = strict

    def get(self, name):
        if name in self.attributes:
            return self.attributes[name]
        if name in self.system:
            return self.system[name]
        if self.strict:
            raise ExpressionError(f"attribute {name!r} does not exist")
        raise _Missing(name)

    def has(self, name):
        return name in self.attributes or name in self.system


def _number(value, what):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"{what} must be a number, got {value!r}")
    return value


def _as_array(value, what):
    if isinstance(value, Array):
        return value
    if isinstance(value, list):
        return Array("double", value)
    if isinstance(value, bytes):
        array = array_of_blob(value)
        if array is not None:
            return array
    raise ExpressionError(f"{what} must be an array, got {value!r}")


def _compare(op, a, b):
    if isinstance(a, Timestamp) or isinstance(b, Timestamp):
        if not (isinstance(a, Timestamp) and isinstance(b, Timestamp)):
            raise ExpressionError(f"cannot compare {a!r} with {b!r}")
    elif isinstance(a, str) or isinstance(b, str):
        if not (isinstance(a, str) and isinstance(b, str)):
            return op == "!="
    elif isinstance(a, bool) or isinstance(b, bool):
        if op in ("==", "!="):
            return (a == b) == (op == "==")
        raise ExpressionError(f"cannot order booleans {a!r}, {b!r}")
    elif not (isinstance(a, int | float) and isinstance(b, int | float)):
        raise ExpressionError(f"cannot compare {a!r} with {b!r}")
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def _slice_bounds(scope, array, index, name):
    start = _number(_evaluate(scope, index[0]), f"the index of {name!r}")
    end = start if index[1] is None else _number(_evaluate(scope, index[1]), f"the index of {name!r}")
    if not (isinstance(start, int) and isinstance(end, int)) or not 0 <= start <= end < len(array.values):
        raise ExpressionError(
            f"index {start}..{end} out of the bounds of {name!r} ({len(array.values)} elements)"
        )
    return start, end


def _evaluate(scope, node):
    tag = node[0]
    if tag == "const":
        return node[1]
    if tag == "attr":
        value = scope.get(node[1])
        return value.copy() if isinstance(value, Array) else value
    if tag == "index":
        name = node[1]
        array = _as_array(scope.get(name), f"attribute {name!r}")
        start, end = _slice_bounds(scope, array, node[2], name)
        if node[2][1] is None:
            return array.values[start]
        return Array(array.kind, array.values[start : end + 1])
    if tag == "neg":
        value = _evaluate(scope, node[1])
        return -_number(value, "a negated value")
    if tag == "arith":
        op = node[1]
        a = _number(_evaluate(scope, node[2]), f"the left side of {op!r}")
        b = _number(_evaluate(scope, node[3]), f"the right side of {op!r}")
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            raise ExpressionError("division by zero")
        return a / b
    if tag == "compare":
        try:
            return _compare(node[1], _evaluate(scope, node[2]), _evaluate(scope, node[3]))
        except _Missing:
            return False
    if tag == "and":
        return _truth(scope, node[1]) and _truth(scope, node[2])
    if tag == "or":
        return _truth(scope, node[1]) or _truth(scope, node[2])
    if tag == "not":
        return not _truth(scope, node[1])
    if tag == "call":
        return _call(scope, node[1], node[2])
    raise ExpressionError(f"cannot evaluate {node!r}")  # pragma: no cover - the parser makes no other


def _truth(scope, node):
    try:
        value = _evaluate(scope, node)
    except _Missing:
        return False
    if not isinstance(value, bool):
        raise ExpressionError(f"a condition must be true or false, got {value!r}")
    return value


def _arity(name, args, n):
    if len(args) != n:
        raise ExpressionError(f"{name}() takes {n} arguments, got {len(args)}")


def _name_argument(name, node):
    if node[0] != "attr":
        raise ExpressionError(f"the first argument of {name}() must be an attribute name")
    return node[1]


def _call(scope, name, args):
    if name == "if_else":
        _arity(name, args, 3)
        return _evaluate(scope, args[1] if _truth(scope, args[0]) else args[2])
    if name == "if_not_exists":
        _arity(name, args, 2)
        attribute = _name_argument(name, args[0])
        return _evaluate(scope, args[0]) if scope.has(attribute) else _evaluate(scope, args[1])
    if name == "exists":
        _arity(name, args, 1)
        return scope.has(_name_argument(name, args[0]))
    if name == "init_array":
        _arity(name, args, 3)
        size = _evaluate(scope, args[0])
        kind = _evaluate(scope, args[1])
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ExpressionError(f"init_array() size must be a positive int, got {size!r}")
        if kind not in ("double", "long", "int"):
            raise ExpressionError(f"init_array() type must be 'double' or 'long', got {kind!r}")
        array = Array("double" if kind == "double" else "long", [])
        try:
            value = array.cast(_evaluate(scope, args[2]))
        except TypedValueError as ex:
            raise ExpressionError(f"init_array(): {ex}") from None
        array.values = [value] * size
        return array
    if name in ("min", "max"):
        _arity(name, args, 2)
        a = _number(_evaluate(scope, args[0]), f"an argument of {name}()")
        b = _number(_evaluate(scope, args[1]), f"an argument of {name}()")
        if a != a:
            return b
        if b != b:
            return a
        return min(a, b) if name == "min" else max(a, b)
    if name == "isnan":
        _arity(name, args, 1)
        value = _number(_evaluate(scope, args[0]), "the argument of isnan()")
        return value != value
    if name == "blob":
        _arity(name, args, 1)
        text = _evaluate(scope, args[0])
        if not isinstance(text, str):
            raise ExpressionError(f"blob() takes base64 text, got {text!r}")
        try:
            return base64.b64decode(text, validate=True)
        except ValueError:
            raise ExpressionError(f"blob(): {text[:40]!r} is not base64") from None
    if name in ("pmin", "pmax", "psum"):
        _arity(name, args, 2)
        a = _as_array(_evaluate(scope, args[0]), f"the first argument of {name}()")
        b = _as_array(_evaluate(scope, args[1]), f"the second argument of {name}()")
        if len(a.values) != len(b.values):
            raise ExpressionError(f"{name}() of arrays of {len(a.values)} and {len(b.values)} elements")
        if name == "psum":
            values = [x + y for x, y in zip(a.values, b.values, strict=True)]
        else:
            pick = _call_pairwise_min if name == "pmin" else _call_pairwise_max
            values = [pick(x, y) for x, y in zip(a.values, b.values, strict=True)]
        return Array(a.kind, [a.cast(v) for v in values])
    if name == "length":
        _arity(name, args, 1)
        value = _evaluate(scope, args[0])
        if isinstance(value, Array):
            return len(value.values)
        if isinstance(value, str | bytes):
            return len(value)
        raise ExpressionError(f"length() of {value!r}")
    if name in ("starts", "ends", "contains"):
        _arity(name, args, 2)
        value = _evaluate(scope, args[0])
        part = _evaluate(scope, args[1])
        if not isinstance(value, str) or not isinstance(part, str):
            return False
        if name == "starts":
            return value.startswith(part)
        if name == "ends":
            return value.endswith(part)
        return part in value
    raise ExpressionError(f"{name}() cannot be used here")


def _call_pairwise_min(x, y):
    return y if x != x else x if y != y else min(x, y)


def _call_pairwise_max(x, y):
    return y if x != x else x if y != y else max(x, y)


def evaluate_condition(tree, attributes, system):
    """Whether the item (its attributes and system attributes) meets the condition `tree`."""
    if tree is None:
        return True
    return _truth(_Scope(attributes, system, strict=False), tree)


def apply_update(actions, attributes, system):
    """The item's attributes after the update `actions` (a new dict; `attributes` is unchanged);
    each action sees the effects of those before it."""
    result = dict(attributes)
    scope = _Scope(result, system, strict=True)
    for action in actions:
        if action[0] == "remove":
            for name in action[1]:
                result.pop(name, None)
            continue
        _, name, index, expression = action
        if name.startswith("__"):
            raise ExpressionError(f"system attribute {name!r} cannot be set")
        value = _evaluate(scope, expression)
        if index is None:
            if isinstance(value, Array):
                value = value.copy()
            elif isinstance(value, bytes):
                value = array_of_blob(value) or value
            result[name] = value
            continue
        array = _as_array(scope.get(name), f"attribute {name!r}").copy()
        start, end = _slice_bounds(scope, array, index, name)
        try:
            if index[1] is None:
                array.values[start] = array.cast(value)
            else:
                given = _as_array(value, f"the value assigned to {name}[{start}..{end}]")
                if len(given.values) != end - start + 1:
                    raise ExpressionError(
                        f"{len(given.values)} elements assigned to {end - start + 1} of {name!r}"
                    )
                array.values[start : end + 1] = [array.cast(v) for v in given.values]
        except TypedValueError as ex:
            raise ExpressionError(f"attribute {name!r}: {ex}") from None
        result[name] = array
    return result
