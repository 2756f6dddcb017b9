"""Reading the YAML files users hand in (region files, system files): bounded, safe, strict, clear errors.

:func:`read_yaml` never constructs Python objects from tags and never unpickles. It reads the parser's events
(libyaml when PyYAML has it, else PyYAML's pure-Python parser; both are iterative, so deep nesting cannot overflow the
stack) and builds plain ``dict``/``list``/``str``/``int``/``float``/``bool``/``None`` values itself, in one pass:

* **YAML 1.2 core schema** for plain scalars: ``true``/``false``, ``null``/``~``/empty, decimal, ``0x`` hexadecimal
  and floating-point numbers (``1e-6``, ``.inf``, ``.nan``); everything else is a string. Quoted scalars are strings.
* **YAML 1.1 readings that differ are refused**, naming the key and line, instead of silently picking one meaning:
  sexagesimal ``1:30`` (1.1: 90), ``yes``/``no``/``on``/``off`` (1.1: booleans), ``017`` (1.1: octal 15),
  ``0o17``, ``0b101``, ``1_000``.
* **Duplicate keys** are refused at every level (the first and the repeated line named); keys must be strings
  (``1:``, ``.inf:``, ``null:`` as a key is refused: quote it).
* Numbers that overflow float64 (a 400-digit integer, ``1e400``) or underflow to 0 (``1e-400``) are refused.
* Numbers are read to the nearest float64 (``0.1`` reads as 0.1000000000000000055...). With ``exact_numbers=True``
  (region files, whose box bounds are rounded outward) a number whose text is not exactly that float comes back as
  an :class:`ExactFloat`: the same float, carrying the exact decimal value of the text in ``.exact``.
* Only the standard tags (``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``, ``!!seq``, ``!!map``) are
  accepted; ``!!python/object`` and every other tag is refused. Anchors and aliases are refused. One document only.
* **Bounded**: the file must be a regular file (a folder, a FIFO or a device is refused without reading it), at most
  :attr:`Limits.max_bytes` are read, nesting deeper than :attr:`Limits.max_depth`, a list or mapping longer than
  :attr:`Limits.max_items` or more than :attr:`Limits.max_nodes` values in all are refused as soon as they are seen.

Every error is ``error(message)`` (a :class:`~certify.errors.CertifyError` subclass given by the caller), one line
naming the file, the key (``states.a[1]``) and its line, and saying what to do.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import yaml

# The event parser: libyaml's when PyYAML was built with it (much faster), else the pure-Python one. Only events
# are read from it: its constructor (SafeConstructor) is never called.
_Parser = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader


@dataclass(frozen=True)
class Limits:
    """What :func:`read_yaml` accepts at most: bytes read, nesting depth, entries of one list or mapping, values."""

    max_bytes: int = 16 << 20
    max_depth: int = 32
    max_items: int = 100_000
    max_nodes: int = 2_000_000


class ExactFloat(float):
    """A float read from a number whose text is not exactly a float64: the nearest float64, as ``float(text)``
    gives, with ``exact`` the text's exact value (a :class:`decimal.Decimal`, any number of digits). It is a float
    in every other way (arithmetic, comparisons, repr and str give plain float results)."""

    __slots__ = ("exact",)
    exact: Decimal

    def __new__(cls, value: float, exact: Decimal) -> "ExactFloat":
        self = super().__new__(cls, value)
        self.exact = exact
        return self

    def __reduce__(self):
        return (ExactFloat, (float(self), self.exact))


def exact_value(v: int | float) -> Decimal:
    """The exact value of a parsed number ``v`` (finite): ``v.exact`` for an :class:`ExactFloat`, else ``v`` itself
    (an int, or a float that is its text's exact value) as a Decimal."""
    return v.exact if isinstance(v, ExactFloat) else Decimal(v)


def _exact(value, text: str):
    """``value`` (a scalar parsed from ``text``) as an :class:`ExactFloat` when it is a finite float that differs
    from the exact value of ``text``; ``value`` unchanged otherwise (ints, exact floats, infinities, NaN, text)."""
    if type(value) is not float or not math.isfinite(value) or value == 0.0:
        return value  # a float 0 comes only from a text without a nonzero digit (_number refuses underflow): exact
    text = text.strip()  # it matched _INT, _HEX (as !!float) or _FLOAT: Decimal (or int) reads it exactly
    exact = Decimal(int(text, 16)) if _HEX.match(text) else Decimal(text)
    return value if Decimal(value) == exact else ExactFloat(value, exact)


# --------------------------------------------------------------------------- scalars (YAML 1.2 core schema)
_NULL = {"", "~", "null", "Null", "NULL"}
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)\Z")
_NAN = re.compile(r"\.(nan|NaN|NAN)\Z")
# plain scalars that YAML 1.1 (PyYAML's safe_load) reads otherwise than YAML 1.2: refused, never guessed
_YAML11_BOOL = {"yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"}
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?\Z")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+\Z")
_OTHER_BASE = re.compile(r"[-+]?0(o[0-7_]+|b[01_]+)\Z")
_UNDERSCORE_NUMBER = re.compile(r"[-+]?(0x[0-9a-fA-F][0-9a-fA-F_]*|[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?)\Z")

_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null")} | {"!"}
_SEQ_TAGS = {None, "!", _STD + "seq"}
_MAP_TAGS = {None, "!", _STD + "map"}


class _Refused(Exception):
    """A scalar or structure the reader refuses; carries the message without the file and key."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _short(text: str, most: int = 40) -> str:
    """``text`` for a one-line message: control characters escaped, at most ``most`` characters."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    return text if len(text) <= most else text[: most - 3] + "..."


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_STD):] if tag.startswith(_STD) else tag


def _number(text: str, value: float, exact=None):
    """``exact`` (an int) or ``value``, after refusing what float64 cannot hold."""
    if value != value:  # NaN from '.nan' only
        return value
    if value in (float("inf"), float("-inf")) and not _INF.match(text):
        raise _Refused(f"the number {_short(text)} overflows float64 (largest about 1.8e308); give a smaller number")
    if value == 0.0 and re.search(r"[1-9]", text.lower().split("e")[0]):
        raise _Refused(f"the number {_short(text)} is too small for float64 and would read as 0; give 0 or a larger "
                       "number")
    return value if exact is None else exact


def _plain(text: str):
    """The YAML 1.2 core-schema value of a plain scalar (refusing what YAML 1.1 reads otherwise)."""
    if text in _NULL:
        return None
    if text in _BOOL:
        return _BOOL[text]
    if text in _YAML11_BOOL:
        raise _Refused(f"'{text}' is a boolean in YAML 1.1 but text in YAML 1.2; write true or false, or quote "
                       f"it ('{text}') for text")
    if _LEADING_ZERO.match(text):
        raise _Refused(f"'{text}' is an octal number in YAML 1.1 but decimal in YAML 1.2; write it without the "
                       "leading zero")
    if _OTHER_BASE.match(text) or "_" in text and _UNDERSCORE_NUMBER.match(text):
        raise _Refused(f"'{_short(text)}' is a number in one YAML version and text in another; write it as a plain "
                       "decimal number, or quote it for text")
    if _SEXAGESIMAL.match(text):
        raise _Refused(f"'{_short(text)}' is a base-60 number in YAML 1.1 (1:30 reads as 90) but text in YAML 1.2; "
                       "write the number, or quote it for text")
    if _INT.match(text):
        value = float(text)  # float() reads any length; int() refuses over 4300 digits
        return _number(text, value, int(text) if abs(value) < 2.0**63 else None)
    if _HEX.match(text):
        if len(text) > 20:
            raise _Refused(f"the number {_short(text)} is too large; give a decimal number")
        return int(text, 16)
    if _FLOAT.match(text) or _INF.match(text) or _NAN.match(text):
        return _number(text, float(text.replace(".inf", "inf").replace(".Inf", "inf").replace(".INF", "inf")
                                   .replace(".nan", "nan").replace(".NaN", "nan").replace(".NAN", "nan")))
    return text


def _tagged(tag: str, text: str):
    """A scalar with an explicit standard tag (``!!str 1:30``, ``!!float 1``)."""
    if tag in ("!", _STD + "str"):
        return text
    if tag == _STD + "null":
        if text in _NULL:
            return None
    elif tag == _STD + "bool":
        if text in _BOOL:
            return _BOOL[text]
    else:
        value = _plain(text)
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value) if tag == _STD + "float" else value
        if isinstance(value, float) and tag == _STD + "float":
            return value
    raise _Refused(f"'{_short(text)}' is not a valid {_tag_name(tag)}")


def _scalar(event, what: str):
    tag = event.tag
    if tag is None and event.implicit[0] and not event.style:
        return _plain(event.value)
    if tag is None:
        return event.value  # quoted or block scalars are text
    if tag in _SCALAR_TAGS:
        return _tagged(tag, event.value)
    raise _Refused(f"the tag {_tag_name(tag)} is not allowed in a {what}: it holds only numbers, text, lists and "
                   "mappings")


# --------------------------------------------------------------------------- the reader
class _Frame:
    __slots__ = ("value", "is_map", "where", "key", "key_lines")

    def __init__(self, value, where):
        self.value = value
        self.is_map = isinstance(value, dict)
        self.where = where  # this collection's key (str) or index (int) in its parent
        self.key = None  # a mapping's pending key (its value comes next)
        self.key_lines: dict[str, int] = {}


def _key_path(stack: list[_Frame], last=None) -> str:
    out = ""
    for part in [f.where for f in stack[2:]] + ([] if last is None else [last]):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return _short(out, 80)


def parse_yaml(text: str, where: str, error: type[ValueError], what: str, limits: Limits = Limits(),
               items_hint: str = "", exact_numbers: bool = False):
    """The value of the YAML document ``text`` (None for an empty one); ``where`` names the file in messages.

    ``items_hint`` is appended to the message for a list or mapping longer than ``limits.max_items``.
    ``exact_numbers``: a number whose text is not exactly a float64 comes back as an :class:`ExactFloat` (module
    docstring); else as the plain nearest float.
    """
    stack = [_Frame([], None)]  # the root holds the document's value
    nodes = documents = 0
    line = 1
    loader = _Parser(text)

    def fail(message: str, last=None):
        key = _key_path(stack, last)
        raise error(f"{where}: {key} (line {line}): {message}" if key else f"{where}: line {line}: {message}")

    try:
        while True:
            try:
                event = loader.get_event()
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                at = f" at line {mark.line + 1}" if mark is not None else ""
                problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
                if "nesting depth" in problem:  # libyaml's own limit (1000), met while it scans ahead
                    problem += f"; a {what} needs only a few levels of lists and mappings"
                raise error(f"{where}: not valid YAML{at}: {problem}") from None
            if event is None or isinstance(event, yaml.StreamEndEvent):
                break
            mark = getattr(event, "start_mark", None)
            if mark is not None:
                line = mark.line + 1
            if isinstance(event, (yaml.StreamStartEvent, yaml.DocumentEndEvent)):
                continue
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    fail(f"a {what} holds one YAML document; remove the second one (after '---')")
                continue
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                stack.pop()
                continue
            top = stack[-1]
            awaiting_key = top.is_map and top.key is None
            slot = None if awaiting_key or len(stack) == 1 else top.key if top.is_map else len(top.value)
            if isinstance(event, yaml.AliasEvent) or event.anchor is not None:
                fail(f"anchors and aliases (&name, *name) are not supported in a {what}; write the values out", slot)
            nodes += 1
            if nodes > limits.max_nodes:
                fail(f"the {what} holds more than {limits.max_nodes} values; it is too large")
            if (awaiting_key or not top.is_map) and len(top.value) >= limits.max_items:
                fail(f"more than {limits.max_items} entries{items_hint}")
            if isinstance(event, yaml.ScalarEvent):
                try:
                    value = _scalar(event, what)
                except _Refused as exc:
                    fail(str(exc), slot)
                if exact_numbers:
                    value = _exact(value, event.value)
                if awaiting_key:
                    if not isinstance(value, str):
                        kind = ("null" if value is None else "a boolean" if isinstance(value, bool)
                                else "a number")
                        fail(f"the key '{_short(event.value)}' reads as {kind}, not as a name; quote it "
                             f"(\"{_short(event.value)}\")")
                    if value in top.key_lines:
                        fail(f"duplicate key '{_short(value)}' (first at line {top.key_lines[value]}); give each "
                             "key once", value)
                    top.key_lines[value] = line
                    top.key = value
                elif top.is_map:
                    top.value[top.key] = value
                    top.key = None
                else:
                    top.value.append(value)
                continue
            is_map = isinstance(event, yaml.MappingStartEvent)
            if event.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
                fail(f"the tag {_tag_name(event.tag)} is not allowed in a {what}: it holds only numbers, text, "
                     "lists and mappings", slot)
            if awaiting_key:
                fail(f"a key must be a name, not a {'mapping' if is_map else 'list'}")
            if len(stack) > limits.max_depth:
                fail(f"nested more than {limits.max_depth} levels deep; a {what} needs only a few levels", slot)
            value = {} if is_map else []
            if top.is_map:
                top.value[top.key] = value
                top.key = None
            else:
                top.value.append(value)
            stack.append(_Frame(value, slot))
    finally:
        dispose = getattr(loader, "dispose", None)
        if dispose is not None:
            dispose()
    root = stack[0].value
    return root[0] if root else None


def finite_number(where: str, key: str, v, error: type[ValueError]) -> float:
    """``v`` (a parsed scalar) as a finite float64; ``error(message)`` naming ``where`` and ``key`` when it is not a
    number (a boolean is not), overflows float64 (a huge int) or is NaN or infinite."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise error(f"{where}: {key} must be a number, got {v!r}")
    try:
        x = float(v)
    except OverflowError:  # the value is not repeated: repr of an int over 4300 digits raises
        raise error(f"{where}: {key} overflows float64; give a smaller number") from None
    if not math.isfinite(x):
        raise error(f"{where}: {key} is NaN or infinite; give a finite number")
    return x


def read_text(path: str | Path, error: type[ValueError], what: str, max_bytes: int) -> str:
    """The UTF-8 text of the regular file ``path``, refusing a folder, FIFO or device and anything over
    ``max_bytes`` without reading more than ``max_bytes + 1`` bytes."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise error(f"{p}: {what} not found") from None
    except (OSError, ValueError) as exc:
        raise error(f"{p}: cannot read the {what} ({exc})") from None
    _regular(p, st.st_mode, error, what)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{p}: cannot read the {what} ({exc.strerror or exc})") from None
    try:
        _regular(p, os.fstat(fd).st_mode, error, what)  # the path may have changed since the stat
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise error(f"{p}: cannot read the {what} ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if size > max_bytes:
        raise error(f"{p}: the {what} is larger than {max_bytes >> 20} MiB; a {what} lists a few numbers per "
                    "coordinate, check that this is the right file")
    try:
        return b"".join(chunks).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{p}: the {what} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _regular(p: Path, mode: int, error: type[ValueError], what: str) -> None:
    if stat.S_ISREG(mode):
        return
    kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    raise error(f"{p}: is {kind}, not a {what}; give the path of a YAML file")


def read_yaml(path: str | Path, error: type[ValueError], what: str, limits: Limits = Limits(),
              items_hint: str = "", exact_numbers: bool = False):
    """The parsed YAML of ``path`` (see the module docstring); ``error(message)`` naming the file on any problem.

    ``exact_numbers``: numbers not exactly float64 come back as :class:`ExactFloat` (see :func:`parse_yaml`)."""
    text = read_text(path, error, what, limits.max_bytes)
    return parse_yaml(text, str(Path(path)), error, what, limits, items_hint, exact_numbers)
