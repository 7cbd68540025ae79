#!/usr/bin/env python3
"""Randomized differential test of cyberdbd against Python's own dict and list.

    python3 difftest.py SOCKET [--seeds 1,2,5-9] [--steps N] [--keep-going N] [-v]

For each seed it runs a long random sequence of table operations (every dict and list op of
PROTOCOL.md section 6, table ops and batches) against the daemon on SOCKET and, side by side,
against a model made of Python's own `dict` and `list`: every result, every error code and, every
few steps, the full contents of every table must agree. Python's semantics are the specification
(DEVELOPERS.md); the model departs from Python only where PROTOCOL.md says the daemon does on
purpose (section 5 "Where cyberdb departs from Python on purpose", canonical equality, which null
means "left out"), and it models each departure exactly instead of skipping the case.

On a divergence it prints a minimal reproduction: the seed and step, the state before the step
rebuilt on fresh tables and shrunk while the divergence holds, the request (diagnostic notation
and hex), the daemon's reply and Python's result, plus the command that replays the seed.

Exit status 0 when every seed agreed. Written from PROTOCOL.md, README.md and
testdata/protocol/*.json only (no Go source), like test_interop.py.

Environment: CYBERDB_DIFFTEST_SEEDS and CYBERDB_DIFFTEST_STEPS give the defaults of --seeds and
--steps; the Go test cyberdbd/difftest_test.go (CI's fixed seeds) honours them too, for long runs.
"""

import argparse
import json
import math
import os
import random
import struct
import collections
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cyberdb_client import (  # noqa: E402
    ERR, ERR_NAME, OP, OP_NAME, Client, ConnectionClosed, CyberDBError, DecodeError, Float, Map,
    Raw, Simple, Tag,
    Undefined, decode, decode_prefix, encode_canonical,
)
from cyberdb_client import _head as cbor_head  # noqa: E402

# Ops added by issues 11 and 14: a daemon from before them answers unknown_op; probed at start.
NEW_OPS = {"lsetslice": OP["lsetslice"], "lcontains": OP["lcontains"],
           "dexpire": OP["dexpire"], "dpersist": OP["dpersist"], "dttl": OP["dttl"],
           "dgetex": OP["dgetex"], "ddelifeq": OP["ddelifeq"], "expire": OP["expire"], "ttl": OP["ttl"]}
TTL_OPS = ["dexpire", "dpersist", "dttl", "dgetex", "ddelifeq", "expire", "ttl"]

# Expiry (PROTOCOL.md 6.5) without a clock: the model knows only two kinds of deadline, far in
# the future (from 2100 on: nothing expires during a run, and dttl with absolute reads them
# back exactly) and in the past (from 1970: the entry or table is gone at once, which the model
# does by deleting it). A "ttl" of 0 or less (dexpire, expire) is in the past too. Relative
# TTLs in the future and default TTLs depend on the time; the Go tests cover those with a fake
# clock (cyberdbd/internal/store/expiry_test.go).
FAR = 4102444800000          # 2100-01-01 in unix milliseconds
MAX_DEADLINE = 1 << 47
MAX_TTL = 1 << 46

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
CBOR_MIN, CBOR_MAX = -(1 << 64), (1 << 64) - 1
C_INT_MIN, C_INT_MAX = -(1 << 31), (1 << 31) - 1
DSCAN_MAX = 10000
# lsort on a list this long or longer may compare other pairs than CPython (PROTOCOL.md 6.4).
SORT_EXACT_MAX = 63


# ============================================================================================
# Model values
#
# A value is what decode(strict=True) gives: None, True, False, Undefined, Simple, int (any
# size: bignums are ints), float, str, bytes, list, Map, Tag (never tags 2/3). Bad is an item
# that is not valid CBOR for the daemon (section 2 "Validity"), sent to check it is refused.

class Bad:
    """Bytes of an invalid item (invalid UTF-8, a repeated map key, tag 0 around a number...)."""

    def __init__(self, data, what):
        self.data, self.what = bytes(data), what

    def __repr__(self):
        return "<invalid: %s h'%s'>" % (self.what, self.data.hex())


def has_bad(v):
    if isinstance(v, Bad):
        return True
    if isinstance(v, list):
        return any(has_bad(x) for x in v)
    if isinstance(v, Map):
        return any(has_bad(k) or has_bad(x) for k, x in v.pairs)
    if isinstance(v, Tag):
        return has_bad(v.value)
    return False


def cb(v):
    """Canonical bytes: the identity of a value for cyberdb (PROTOCOL.md section 5)."""
    return encode_canonical(v)


class V:
    """A list element or dict key of the model. Equality and hash are those of the canonical
    encoding, so Python's own list.remove/index/count/`in` and dict lookups apply cyberdb's
    documented equality (1, 1.0 and true differ; NaN equals NaN; -0.0 is not 0.0)."""

    __slots__ = ("v", "b")

    def __init__(self, v):
        self.v, self.b = v, cb(v)

    def __eq__(self, other):
        return isinstance(other, V) and self.b == other.b

    def __hash__(self):
        return hash(self.b)

    def __repr__(self):
        return diag(self.v)


class Opaque:
    """The sort key of a value `lsort` cannot order (null, undefined, simple values, maps, tags):
    `<` with anything raises TypeError, as Python's does for None and dicts; `==` is cyberdb's."""

    __slots__ = ("b",)

    def __init__(self, b):
        self.b = b

    def __eq__(self, other):
        return isinstance(other, Opaque) and self.b == other.b

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self.b)

    def __lt__(self, other):
        return NotImplemented

    __gt__ = __le__ = __ge__ = __lt__


def sort_key(v):
    """Python's own ordering for what PROTOCOL.md 6.4 says compares like Python (numbers of any
    size with bools, text by code point, bytes, arrays element by element); Opaque otherwise.
    Floats are fresh objects so Python's identity shortcut never makes a NaN equal itself."""
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return struct.unpack(">d", struct.pack(">d", v))[0]
    if isinstance(v, (str, bytes)):
        return v
    if isinstance(v, list):
        return [sort_key(x) for x in v]
    return Opaque(cb(v))


def sort_is_deterministic(vals):
    """Whether every correct comparison sort gives the same outcome: no NaN and no arrays (with
    arrays, whether an incomparable pair is reached depends on which pairs are compared)."""
    for v in vals:
        if isinstance(v, list) or isinstance(v, float) and v != v:
            return False
    return True


# -- diagnostic notation (RFC 8949 section 8), for reproductions --------------------------------

def _fdiag(x):
    if x != x:
        return "NaN"
    if x in (math.inf, -math.inf):
        return "Infinity" if x > 0 else "-Infinity"
    r = repr(x)
    return r if any(c in r for c in ".en") else r + ".0"


def diag(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is Undefined:
        return "undefined"
    if isinstance(v, Simple):
        return "simple(%d)" % v.n
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _fdiag(v)
    if isinstance(v, Float):
        return _fdiag(v.value) + "_%d" % {16: 1, 32: 2, 64: 3}[v.width]
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (bytes, bytearray)):
        return "h'%s'" % bytes(v).hex()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(diag(x) for x in v) + "]"
    if isinstance(v, Map):
        return "{" + ", ".join("%s: %s" % (diag(k), diag(x)) for k, x in v.pairs) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join("%s: %s" % (diag(k), diag(x)) for k, x in v.items()) + "}"
    if isinstance(v, Tag):
        return "%d(%s)" % (v.tag, diag(v.value))
    if isinstance(v, (Bad, Raw, V)):
        return repr(v)
    return repr(v)


def diag_bytes(b, fallback=None):
    """Diagnostic notation of encoded bytes; of fallback (the request as generated, invalid
    items shown as such) when the bytes hold an item this client cannot decode."""
    try:
        return diag(decode(b, strict=True))
    except Exception as e:  # noqa: BLE001 - any decoding failure is shown as such
        if fallback is not None:
            return diag(fallback)
        return "<not CBOR: %s>" % e


# ============================================================================================
# Wire encoding with random (valid) variants: the same value in many encodings, so the
# daemon's canonicalisation is exercised (non-shortest heads, indefinite lengths, floats in
# every exact width, NaN payloads, bignums with leading zeros, maps in any key order).

def _whead(major, n, out, rng, p):
    if n < 24:
        choices = [n]
    else:
        choices = []
    for ai, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            choices.append((ai, size))
    pick = choices[0]
    if rng is not None and len(choices) > 1 and rng.random() < p:
        pick = rng.choice(choices[1:])
    if isinstance(pick, int):
        out.append((major << 5) | pick)
    else:
        ai, size = pick
        out.append((major << 5) | ai)
        out += n.to_bytes(size, "big")


_NAN_VARIANTS = [(16, 0x7E00), (16, 0x7E01), (16, 0xFE00), (16, 0x7C01), (32, 0x7FC00000),
                 (32, 0xFFC00001), (64, 0x7FF8000000000000), (64, 0x7FF0000000000001),
                 (64, 0xFFF8000000000000)]


def _wire(v, out, rng, p, big):
    """Append v's encoding to out; with rng, a random valid variant at each node with
    probability p. big: integers of the CBOR range may go out as bignums (tags 2/3)."""
    r = rng.random() if rng is not None else 1.0
    if isinstance(v, Bad):
        out += v.data
    elif isinstance(v, Raw):
        out += v.data
    elif v is None:
        out.append(0xF6)
    elif v is True:
        out.append(0xF5)
    elif v is False:
        out.append(0xF4)
    elif v is Undefined:
        out.append(0xF7)
    elif isinstance(v, Simple):
        out += bytes([0xE0 | v.n]) if v.n < 24 else bytes([0xF8, v.n])
    elif isinstance(v, int):
        m, major = (v, 0) if v >= 0 else (-1 - v, 1)
        if m < 1 << 64 and not (big and r < p / 3):
            _whead(major, m, out, rng, p)
        else:
            b = m.to_bytes(max(1, (m.bit_length() + 7) // 8), "big")
            if rng is not None and rng.random() < p:
                b = b"\x00" * rng.randint(1, 3) + b
            if m == 0 and rng is not None and rng.random() < 0.5:
                b = b""
            out.append(0xC2 if major == 0 else 0xC3)
            _whead(2, len(b), out, rng, p)
            out += b
    elif isinstance(v, float):
        if v != v:
            width, bits = rng.choice(_NAN_VARIANTS) if rng is not None and r < 0.5 else (64, 0x7FF8000000000000)
            out.append({16: 0xF9, 32: 0xFA, 64: 0xFB}[width])
            out += bits.to_bytes(width // 8, "big")
            return
        widths = [64]
        for w, fmt in ((16, ">e"), (32, ">f")):
            try:
                if struct.unpack(fmt, struct.pack(fmt, v))[0] == v:
                    widths.append(w)
            except OverflowError:
                pass
        w = rng.choice(widths) if rng is not None else 64
        code, fmt = {16: (0xF9, ">e"), 32: (0xFA, ">f"), 64: (0xFB, ">d")}[w]
        out.append(code)
        out += struct.pack(fmt, v)
    elif isinstance(v, (str, bytes)):
        b = v.encode("utf-8") if isinstance(v, str) else v
        major = 3 if isinstance(v, str) else 2
        if rng is not None and r < p / 2:
            # indefinite length, chunks cut at character boundaries
            out.append((major << 5) | 31)
            if isinstance(v, str):
                cuts = sorted(set(rng.randint(0, len(v)) for _ in range(rng.randint(0, 2))))
                parts = [v[a:b2] for a, b2 in zip([0] + cuts, cuts + [len(v)])]
                parts = [x.encode("utf-8") for x in parts]
            else:
                cuts = sorted(set(rng.randint(0, len(b)) for _ in range(rng.randint(0, 2))))
                parts = [b[a:b2] for a, b2 in zip([0] + cuts, cuts + [len(b)])]
            for part in parts:
                _whead(major, len(part), out, rng, p)
                out += part
            out.append(0xFF)
        else:
            _whead(major, len(b), out, rng, p)
            out += b
    elif isinstance(v, (list, tuple)):
        indef = rng is not None and r < p / 2
        if indef:
            out.append(0x9F)
        else:
            _whead(4, len(v), out, rng, p)
        for x in v:
            _wire(x, out, rng, p, big)
        if indef:
            out.append(0xFF)
    elif isinstance(v, Map):
        indef = rng is not None and r < p / 2
        if indef:
            out.append(0xBF)
        else:
            _whead(5, len(v.pairs), out, rng, p)
        for k, x in v.pairs:
            _wire(k, out, rng, p, big)
            _wire(x, out, rng, p, big)
        if indef:
            out.append(0xFF)
    elif isinstance(v, Tag):
        _whead(6, v.tag, out, rng, p)
        # tag 1 holds an integer or a float, never a bignum (RFC 8949 section 3.4.2)
        _wire(v.value, out, rng, p, big and v.tag != 1)
    else:
        raise TypeError("cannot encode %r" % (v,))


# ============================================================================================
# The model: Python's dict and list, plus the rules of PROTOCOL.md sections 3, 5 and 6.

class Skip(Exception):
    """The generated request has no single right answer the model can give; not sent."""


class Err(Exception):
    """An expected error reply: code name, the Python that raises it, and (inside a batch) the
    item index and op name the message prefix must carry."""

    def __init__(self, code, why):
        super().__init__(code, why)
        self.code, self.why = code, why
        self.batch_k = None
        self.batch_name = None


class Table:
    __slots__ = ("kind", "data", "dl", "tdl")

    def __init__(self, kind, data, dl=None, tdl=0):
        # dl: a dict table's deadlines, key -> unix ms (absent: none); tdl: the table's own.
        self.kind, self.data, self.dl, self.tdl = kind, data, dict(dl or {}), tdl

    def copy(self):
        return Table(self.kind, self.data.copy(), self.dl, self.tdl)

    def contents(self):
        if self.kind == "list":
            return [e.v for e in self.data]
        return [[k.v, x] for k, x in self.data.items()]


def is_int(a):
    return type(a) is int


def want_int64(a, what):
    if not is_int(a):
        raise Err("bad_request", "%s %s is not an integer (PROTOCOL.md 6: bool, float, null, "
                  "undefined, tags are bad_request)" % (what, diag(a)))
    if not INT64_MIN <= a <= INT64_MAX:
        raise Err("bad_request", "%s %s is outside the int64 range (PROTOCOL.md 5)" % (what, diag(a)))
    return a


def want_opt_int64(args, i, what):
    """An optional integer where null means left out (PROTOCOL.md 6's null table)."""
    if i >= len(args) or args[i] is None:
        return None
    return want_int64(args[i], what)


def valid_name(t):
    return isinstance(t, str) and 0 < len(t.encode("utf-8")) <= 255


def pairs_of(content, what):
    """create_dict/dupdate content: a map, or an array of [key, value] pairs."""
    if isinstance(content, Map):
        return list(content.pairs)
    if isinstance(content, list):
        out = []
        for p in content:
            if not (isinstance(p, list) and len(p) == 2):
                raise Err("bad_request", "%s: item %s is not a [key, value] pair (Python: "
                          "ValueError/TypeError; nothing applied, PROTOCOL.md 5)" % (what, diag(p)))
            out.append((p[0], p[1]))
        return out
    raise Err("bad_request", "%s: %s is not a map or an array of pairs (PROTOCOL.md 5)" % (what, diag(content)))


# Argument counts after the table name: (min, max); None = no maximum.
ARITY = {
    "dget": (1, 2), "dset": (2, 3), "ddel": (1, 1), "dhas": (1, 1), "dlen": (0, 0),
    "dkeys": (0, 0), "dvalues": (0, 0), "ditems": (0, 0), "dpop": (1, 2), "dpopitem": (0, 0),
    "dsetdefault": (1, 3), "dupdate": (1, 2), "dclear": (0, 0), "dtodict": (0, 0),
    "dincr": (1, 2), "dcas": (2, 4), "dscan": (2, 2),
    "lget": (1, 1), "lset": (2, 2), "ldel": (1, 1), "lslice": (0, 3), "ldelslice": (0, 3),
    "lappend": (1, None), "lextend": (1, 1), "linsert": (2, 2), "lpop": (0, 1),
    "lremove": (1, 1), "lcount": (1, 1), "lindex": (1, 3), "lreverse": (0, 0), "lsort": (0, 1),
    "lclear": (0, 0), "ltolist": (0, 0), "llen": (0, 0), "lrange": (2, 2),
    "lsetslice": (4, 4), "lcontains": (1, 1),
    "dexpire": (2, 2), "dpersist": (1, 1), "dttl": (1, 2), "dgetex": (2, 2), "ddelifeq": (2, 2),
    "expire": (1, 1), "ttl": (0, 1),
    "create_dict": (0, 2), "create_list": (0, 1), "exists": (0, 0), "drop": (0, 0), "len": (0, 0),
    "lappendleft": (1, None), "lpopleft": (0, 0), "lextendleft": (1, 1), "lrotate": (0, 1),
}


def parse_when(op, w, allowed, min_ttl=1):
    """A "when" or write-options map (PROTOCOL.md 6.5) -> dict of the keys given, with "at"
    for a deadline (a "ttl" of 0 or less: at 1, in the past). Raises bad_request as the daemon."""
    if not isinstance(w, (dict, Map)):
        raise Err("bad_request", "%s: options %s are not a map" % (op, diag(w)))
    pairs = list(w.pairs) if isinstance(w, Map) else list(w.items())
    got = {}
    for k, v in pairs:
        if not isinstance(k, str) or k not in allowed:
            raise Err("bad_request", "%s: unknown option %s" % (op, diag(k)))
        if k in ("ttl", "at"):
            if type(v) is not int:
                raise Err("bad_request", "%s: %s is not an integer" % (op, k))
            if k == "ttl":
                if v < max(min_ttl, -MAX_TTL) or v > MAX_TTL:
                    raise Err("bad_request", "%s: ttl %d out of range" % (op, v))
                if v > 0:
                    raise AssertionError("difftest generates no ttl in the future")
                got["at"] = 1
            else:
                if not 1 <= v <= MAX_DEADLINE:
                    raise Err("bad_request", "%s: at %d out of range" % (op, v))
                got["at"] = v
            got["_deadline"] = got.get("_deadline", 0) + 1
        else:
            if v is not True:
                raise Err("bad_request", "%s: %s must be true" % (op, k))
            got[k] = True
            if k in ("persist", "keepttl"):
                got["_deadline"] = got.get("_deadline", 0) + 1
    if got.pop("_deadline", 0) > 1:
        raise Err("bad_request", "%s: only one of ttl, at, persist, keepttl" % op)
    if got.get("nx") and got.get("xx"):
        raise Err("bad_request", "%s: nx and xx exclude each other" % op)
    if op in ("dexpire", "dgetex", "expire") and "at" not in got and not got.get("persist"):
        raise Err("bad_request", "%s: the map must give the deadline" % op)
    return got


def expired(at):
    return at is not None and at != 0 and at < FAR


def want_bool(args, i, what):
    """An optional bool argument: absent or null is false (PROTOCOL.md 6)."""
    if i >= len(args) or args[i] is None:
        return False
    if type(args[i]) is not bool:
        raise Err("bad_request", "%s %s is not a boolean" % (what, diag(args[i])))
    return args[i]


def check_arity(name, rest):
    lo, hi = ARITY[name]
    if len(rest) < lo or (hi is not None and len(rest) > hi):
        raise Err("bad_request", "%s takes %d..%s arguments after the table, got %d (PROTOCOL.md 6)"
                  % (name, lo, "" if hi is None else hi, len(rest)))


def py_slice(args, off):
    s = want_opt_int64(args, off, "slice start")
    e = want_opt_int64(args, off + 1, "slice stop")
    st = want_opt_int64(args, off + 2, "slice step")
    return slice(s, e, st)


class Model:
    """The tables of one run, keyed by full name."""

    def __init__(self, new_ops, quirks=()):
        self.tables = {}
        self.new_ops = new_ops
        # Empty: PROTOCOL.md as written. Names of KNOWN: what the daemon is known to do instead
        # in those places, to tell a known divergence from a new one.
        self.quirks = frozenset(quirks)

    def op_name(self, op):
        name = OP_NAME.get(op)
        return None if name in NEW_OPS and not self.new_ops else name

    def snapshot(self):
        return {n: t.copy() for n, t in self.tables.items()}

    def restore(self, snap):
        self.tables = {n: t.copy() for n, t in snap.items()}

    # -- one request ---------------------------------------------------------------------------
    def request(self, op, args):
        """Apply [op, args...] as the daemon must; return the result or raise Err."""
        if op == OP["batch"]:
            return self.batch(args)
        return self.run(op, args, in_batch=False)

    def run(self, op, args, in_batch):
        name = self.op_name(op)
        if name is None:
            raise Err("unknown_op", "no op %r (PROTOCOL.md 3)" % (op,))
        if name in ("hello", "ping", "info", "save", "batch"):
            raise AssertionError("not generated outside batch checks")
        if name == "tables":
            if args:
                raise Err("bad_request", "tables takes no arguments")
            return TablesReply([[n, t.kind, len(t.data)]
                                for n, t in sorted(self.tables.items(), key=lambda x: x[0].encode())])
        if not args or not valid_name(args[0]):
            raise Err("bad_request", "argument 1 must be a table name: non-empty text of at most "
                      "255 bytes (PROTOCOL.md 5); got %s" % (diag(args[0]) if args else "nothing"))
        t, rest = args[0], list(args[1:])
        if name in ("create_dict", "create_list"):
            # PROTOCOL.md 3 does not place table_exists in its order of checks; the daemon
            # checks the argument count first, then existence, then the content.
            check_arity(name, rest)
            if t in self.tables:
                raise Err("table_exists", "table %r exists (PROTOCOL.md 6.2)" % t)
            self.valid(rest)
            content = rest[0] if rest else None
            if name == "create_dict" and len(rest) == 2 and rest[1] is not None:
                o = rest[1]
                if not isinstance(o, (dict, Map)) or any(
                        k not in ("ttl", "evict", "max_len") for k, _ in (o.pairs if isinstance(o, Map) else o.items())):
                    raise Err("bad_request", "create_dict options %s (PROTOCOL.md 6.2)" % diag(o))
                if len(o) > 0:
                    raise AssertionError("difftest generates no create_dict options")
            if name == "create_list":
                if content is None:
                    vals = []
                elif isinstance(content, list):
                    vals = [V(x) for x in content]
                else:
                    raise Err("bad_request", "create_list content %s is not an array or null" % diag(content))
                self.tables[t] = Table("list", vals)
            else:
                d = {}
                if content is not None:
                    for k, x in pairs_of(content, "create_dict"):
                        d[V(k)] = x  # dict(pairs): later duplicates overwrite, first place kept
                self.tables[t] = Table("dict", d)
            return None
        if name == "exists":
            check_arity(name, rest)
            return t in self.tables
        tab = self.tables.get(t)
        if tab is None:
            raise Err("no_such_table", "no table %r (PROTOCOL.md 6)" % t)
        if name == "drop":
            check_arity(name, rest)
            del self.tables[t]
            return None
        if name == "len":
            check_arity(name, rest)
            return len(tab.data)
        if name == "expire":
            check_arity(name, rest)
            self.valid(rest)
            w = parse_when(name, rest[0], ("ttl", "at", "persist"), min_ttl=-MAX_TTL)
            if w.get("persist"):
                tab.tdl = 0
            elif expired(w["at"]):
                del self.tables[t]  # gone at once: dropped
            else:
                tab.tdl = w["at"]
            return None
        if name == "ttl":
            check_arity(name, rest)
            self.valid(rest)
            absolute = want_bool(rest, 0, "ttl absolute")
            if not tab.tdl:
                return None
            return tab.tdl if absolute else TTLLeft(tab.tdl)
        kind = "dict" if name.startswith("d") else "list"
        if tab.kind != kind:
            raise Err("wrong_kind", "%s on a %s table" % (name, tab.kind))
        check_arity(name, rest)
        self.valid(rest)
        if kind == "dict":
            return self.dict_op(name, tab.data, rest, tab.dl)
        return self.list_op(name, tab, rest)

    def valid(self, rest):
        # PROTOCOL.md 3: the validity of an argument's content (UTF-8, repeated map keys, tags
        # 0/1) is checked with the remaining arguments, after the table's existence and kind.
        if any(has_bad(a) for a in rest):
            raise Err("bad_request", "an argument is not valid CBOR for cyberdb, found with the "
                      "arguments (after the table checks)")

    # -- dict: Python's dict, keyed by canonical encoding ----------------------------------------
    def dict_op(self, name, d, a, dl):
        def put(k, x, w):
            """Store x at k with the deadline w says (PROTOCOL.md 6.5: a plain write has none)."""
            keep = dl.get(k, 0) if (w.get("keepttl") and k in d) else 0
            d[k] = x
            at = w.get("at", keep)
            if expired(at):
                del d[k]          # gone at once
                dl.pop(k, None)
            elif at:
                dl[k] = at
            else:
                dl.pop(k, None)

        def gone(k):
            d.pop(k, None)
            dl.pop(k, None)

        if name == "dget":
            k = V(a[0])
            if k in d:
                return d[k]
            if len(a) == 2:
                return a[1]
            raise Err("key_not_found", "d[k] raises KeyError")
        if name == "dset":
            w = parse_when(name, a[2], ("ttl", "at", "keepttl", "nx", "xx")) if len(a) == 3 and a[2] is not None else {}
            k = V(a[0])
            if w.get("nx") or w.get("xx"):
                if (k in d) != bool(w.get("xx")):
                    return False
                put(k, a[1], w)
                return True
            put(k, a[1], w)
            return None
        if name == "ddel":
            try:
                del d[V(a[0])]
            except KeyError:
                raise Err("key_not_found", "del d[k] raises KeyError")
            dl.pop(V(a[0]), None)
            return None
        if name == "dhas":
            return V(a[0]) in d
        if name == "dlen":
            return len(d)
        if name == "dkeys":
            return [k.v for k in d]
        if name == "dvalues":
            return list(d.values())
        if name == "ditems":
            return [[k.v, x] for k, x in d.items()]
        if name == "dpop":
            try:
                r = d.pop(V(a[0])) if len(a) == 1 else d.pop(V(a[0]), a[1])
            except KeyError:
                raise Err("key_not_found", "d.pop(k) raises KeyError")
            dl.pop(V(a[0]), None)
            return r
        if name == "dpopitem":
            try:
                k, x = d.popitem()
            except KeyError:
                raise Err("key_not_found", "d.popitem() on an empty dict raises KeyError")
            dl.pop(k, None)
            return [k.v, x]
        if name == "dsetdefault":
            w = parse_when(name, a[2], ("ttl", "at")) if len(a) == 3 and a[2] is not None else {}
            k = V(a[0])
            if k in d:
                return d[k]
            x = a[1] if len(a) >= 2 else None
            put(k, x, w)
            return x
        if name == "dupdate":
            pairs = pairs_of(a[0], "dupdate")  # all pairs checked before any is applied
            w = parse_when(name, a[1], ("ttl", "at", "keepttl")) if len(a) == 2 and a[1] is not None else {}
            for k, x in pairs:
                put(V(k), x, w)
            return None
        if name == "dclear":
            d.clear()
            dl.clear()
            return None
        if name == "dtodict":
            return DictReply([(k.v, x) for k, x in d.items()])
        if name == "dincr":
            return self.dincr(d, a)  # the deadline stays (Redis's INCR)
        if name == "dcas":
            w = parse_when(name, a[3], ("ttl", "at", "keepttl")) if len(a) == 4 and a[3] is not None else {}
            k = V(a[0])
            if len(a) >= 3:
                ok = k in d and V(d[k]) == V(a[2])
            else:
                ok = k not in d
            if ok:
                put(k, a[1], w)
            return ok
        if name == "dscan":
            cursor, count = a
            if not (is_int(cursor) and 0 <= cursor <= CBOR_MAX):
                raise Err("bad_request", "dscan cursor %s is not an unsigned integer" % diag(cursor))
            count = want_int64(count, "dscan count")
            if count < 1:
                raise Err("bad_request", "dscan count %d < 1 (PROTOCOL.md 6.3)" % count)
            return ScanCheck([[k.v, x] for k, x in d.items()], cursor, count)
        if name == "dexpire":
            w = parse_when(name, a[1], ("ttl", "at"), min_ttl=-MAX_TTL)
            k = V(a[0])
            if k not in d:
                return False
            if expired(w["at"]):
                gone(k)
            else:
                dl[k] = w["at"]
            return True
        if name == "dpersist":
            k = V(a[0])
            return k in d and dl.pop(k, None) is not None
        if name == "dttl":
            absolute = want_bool(a, 1, "dttl absolute")
            k = V(a[0])
            if k not in d:
                raise Err("key_not_found", "dttl of a missing key")
            if k not in dl:
                return None
            return dl[k] if absolute else TTLLeft(dl[k])
        if name == "dgetex":
            w = parse_when(name, a[1], ("ttl", "at", "persist"))
            k = V(a[0])
            if k not in d:
                raise Err("key_not_found", "dgetex of a missing key")
            x = d[k]
            if w.get("persist"):
                dl.pop(k, None)
            elif expired(w["at"]):
                gone(k)
            else:
                dl[k] = w["at"]
            return x
        if name == "ddelifeq":
            k = V(a[0])
            if k in d and V(d[k]) == V(a[1]):
                gone(k)
                return True
            return False
        raise AssertionError(name)

    @staticmethod
    def dincr(d, a):
        k = V(a[0])
        delta = 1 if len(a) == 1 or a[1] is None else a[1]
        cur = d.get(k, 0)

        def number(x):
            return type(x) in (int, float)

        if not number(delta):
            raise Err("type_error", "d[k] + %s: the delta is not a number (bools are not, "
                      "PROTOCOL.md 5)" % diag(delta))
        if not number(cur):
            raise Err("type_error", "%s + delta: the stored value is not a number" % diag(cur))
        try:
            r = cur + delta
        except OverflowError:
            raise Err("overflow", "%s + %s raises OverflowError in Python" % (diag(cur), diag(delta)))
        if type(r) is int and not CBOR_MIN <= r <= CBOR_MAX:
            raise Err("overflow", "result %d outside the CBOR integer range (PROTOCOL.md 6.3)" % r)
        d[k] = r
        return r

    # -- list: Python's list of canonical values ---------------------------------------------------
    def list_op(self, name, tab, a):
        lst = tab.data
        try:
            if name == "lget":
                return lst[want_int64(a[0], "index")].v
            if name == "lset":
                lst[want_int64(a[0], "index")] = V(a[1])
                return None
            if name == "ldel":
                del lst[want_int64(a[0], "index")]
                return None
            if name == "lslice":
                return [e.v for e in lst[py_slice(a, 0)]]
            if name == "ldelslice":
                del lst[py_slice(a, 0)]
                return None
            if name == "lsetslice":
                sl = py_slice(a, 0)
                if not isinstance(a[3], list):
                    raise Err("bad_request", "lsetslice values %s is not an array" % diag(a[3]))
                lst[sl] = [V(x) for x in a[3]]
                return None
            if name == "lappend":
                for x in a:
                    lst.append(V(x))
                return len(lst)
            # collections.deque's operations (PROTOCOL.md 6.4), checked against deque itself.
            if name == "lappendleft":
                d = collections.deque(lst)
                for x in a:
                    d.appendleft(V(x))
                lst[:] = d
                return len(lst)
            if name == "lextendleft":
                if not isinstance(a[0], list):
                    raise Err("bad_request", "lextendleft takes an array, got %s" % diag(a[0]))
                d = collections.deque(lst)
                d.extendleft(V(x) for x in a[0])
                lst[:] = d
                return len(lst)
            if name == "lpopleft":
                d = collections.deque(lst)
                try:
                    v = d.popleft()
                except IndexError:
                    raise Err("index_out_of_range", "deque.popleft() raises IndexError")
                lst[:] = d
                return v.v
            if name == "lrotate":
                k = want_opt_int64(a, 0, "rotate n")
                d = collections.deque(lst)
                d.rotate(1 if k is None else k)
                lst[:] = d
                return None
            if name == "lextend":
                if not isinstance(a[0], list):
                    raise Err("bad_request", "lextend takes an array, got %s (PROTOCOL.md 5)" % diag(a[0]))
                lst.extend(V(x) for x in a[0])
                return len(lst)
            if name == "linsert":
                lst.insert(want_int64(a[0], "index"), V(a[1]))
                return None
            if name == "lpop":
                i = want_opt_int64(a, 0, "index")
                return (lst.pop() if i is None else lst.pop(i)).v
            if name == "lremove":
                try:
                    lst.remove(V(a[0]))
                except ValueError:
                    raise Err("value_not_found", "l.remove(v) raises ValueError")
                return None
            if name == "lcount":
                return lst.count(V(a[0]))
            if name == "lcontains":
                return V(a[0]) in lst
            if name == "lindex":
                s = want_opt_int64(a, 1, "lindex start")
                e = want_opt_int64(a, 2, "lindex stop")
                try:
                    return lst.index(V(a[0]), 0 if s is None else s, sys.maxsize if e is None else e)
                except ValueError:
                    raise Err("value_not_found", "l.index(v, ...) raises ValueError")
            if name == "lreverse":
                lst.reverse()
                return None
            if name == "lsort":
                rev = a[0] if a else None
                if rev is None:
                    rev = False
                elif not is_int(rev) and not isinstance(rev, bool):
                    raise Err("bad_request", "sort(reverse=%s) raises TypeError in Python" % diag(rev))
                elif is_int(rev) and not C_INT_MIN <= rev <= C_INT_MAX:
                    raise Err("overflow", "sort(reverse=%d) raises OverflowError in Python" % rev)
                vals = [e.v for e in lst]
                if len(vals) > SORT_EXACT_MAX and not sort_is_deterministic(vals):
                    return SortCheck(tab, bool(rev))
                keyed = [(sort_key(e.v), e) for e in lst]
                try:
                    keyed.sort(key=lambda ke: ke[0], reverse=bool(rev))
                except TypeError as ex:
                    raise Err("type_error", "l.sort() raises TypeError: %s (list unchanged, "
                              "PROTOCOL.md 5)" % ex)
                lst[:] = [e for _, e in keyed]
                return None
            if name == "lclear":
                lst.clear()
                return None
            if name == "ltolist":
                return [e.v for e in lst]
            if name == "llen":
                return len(lst)
            if name == "lrange":
                s = want_int64(a[0], "lrange start")
                n = want_int64(a[1], "lrange count")
                if s < 0 or n < 0:
                    raise Err("bad_request", "lrange start/count negative (PROTOCOL.md 6.4)")
                return [e.v for e in lst[s:s + n]]
        except IndexError as ex:
            raise Err("index_out_of_range", "Python raises IndexError: %s" % ex)
        except ValueError as ex:
            # slice step 0, extended slice of another size: Python's ValueError, bad_request
            raise Err("bad_request", "Python raises ValueError: %s" % ex)
        raise AssertionError(name)

    # -- batch -------------------------------------------------------------------------------------
    def batch(self, args):
        """PROTOCOL.md 6.2: errors of the batch argument first; then each item in turn, checked
        as a request on its own would be on the state the earlier items left (shape, op number,
        table, arguments, the operation); the first failing item's error is the batch's, with
        every earlier item undone."""
        if len(args) != 1:
            raise Err("bad_request", "batch takes 1 argument, got %d" % len(args))
        items = args[0]
        if not isinstance(items, list):
            raise Err("bad_request", "batch argument %s is not an array (a tagged array is not "
                      "one either)" % diag(items))
        snap = self.snapshot()
        results = []
        for k, it in enumerate(items):
            name = ""
            try:
                if not (isinstance(it, list) and it and is_int(it[0]) and 0 <= it[0] <= CBOR_MAX):
                    raise Err("bad_request", "batch item %s is not [op, arg...]" % diag(it))
                op = it[0]
                name = self.op_name(op)
                if name is None:
                    name = "op_%d" % op
                    raise Err("unknown_op", "no op %d" % op)
                if name in ("hello", "ping", "info", "save", "batch"):
                    raise Err("bad_request", "%s cannot be part of a batch" % name)
                r = self.run(op, list(it[1:]), in_batch=True)
            except Err as e:
                self.restore(snap)
                e.batch_k, e.batch_name = k, name
                raise
            if isinstance(r, (SortCheck, ScanCheck)):
                raise Skip("a result only a check can judge, inside a batch")
            results.append(r)
        return BatchReply(results)


class TablesReply:
    """tables: compared after leaving out the tables of other runs."""

    def __init__(self, rows):
        self.rows = rows


class BatchReply:
    """A batch's results, each compared on its own (a dtodict map among them included)."""

    def __init__(self, results):
        self.results = results


class DictReply:
    """dtodict's map: canonical entries in insertion order (PROTOCOL.md 5)."""

    def __init__(self, pairs):
        self.pairs = pairs


class ScanCheck:
    """A dscan page: cursors are opaque, so the reply is checked, not predicted."""

    def __init__(self, items, cursor, count):
        self.items, self.cursor, self.count = items, cursor, count


class SortCheck:
    """lsort of a long list holding arrays or NaN: any outcome a correct sort could give."""

    def __init__(self, tab, reverse):
        self.tab, self.reverse = tab, reverse


# ============================================================================================
# Comparing a reply with the model

def expected_bytes(x):
    """The bytes the reply's result must be: canonical, except dtodict's insertion order."""
    if isinstance(x, DictReply):
        out = bytearray(cbor_head(5, len(x.pairs)))
        for k, v in x.pairs:
            out += cb(k) + cb(v)
        return bytes(out)
    return cb(x)


def split_reply(body):
    """(id, code, raw bytes of the third item) of a reply frame body."""
    if not body or body[0] != 0x83:
        raise DecodeError("reply is not a 3-item array: %s" % body.hex())
    rid, pos = decode_prefix(body, 1)
    code, pos = decode_prefix(body, pos)
    return rid, code, body[pos:]


class Mismatch(Exception):
    pass


def split_array(raw):
    """The raw bytes of each item of a definite-length array (replies use definite lengths)."""
    raw = bytes(raw)
    major, ai = raw[0] >> 5, raw[0] & 0x1F
    if major != 4 or ai == 31:
        raise Mismatch("expected a definite-length array")
    if ai < 24:
        n, pos = ai, 1
    else:
        size = {24: 1, 25: 2, 26: 4, 27: 8}[ai]
        n, pos = int.from_bytes(raw[1:1 + size], "big"), 1 + size
    out = []
    for _ in range(n):
        _, end = decode_prefix(raw, pos)
        out.append(raw[pos:end])
        pos = end
    return out


def compare(expect, body, rid, ctx):
    """Raise Mismatch if the reply body does not match expect (an Err or a result)."""
    try:
        gid, code, rest = split_reply(body)
        val = decode(rest, strict=True)
    except Exception as e:  # noqa: BLE001
        raise Mismatch("undecodable reply: %s" % e)
    if gid != rid:
        raise Mismatch("reply id %r, expected %r" % (gid, rid))
    if isinstance(expect, Err):
        if code == 0:
            raise Mismatch("expected error %s, got a result" % expect.code)
        if ERR_NAME.get(code) != expect.code:
            raise Mismatch("expected error %s, got %s" % (expect.code, ERR_NAME.get(code, code)))
        if expect.batch_k is not None and isinstance(val, str):
            if expect.batch_name:
                want = "batch op %d (%s): " % (expect.batch_k, expect.batch_name)
            else:
                want = "batch op %d: " % expect.batch_k
            if not val.startswith(want):
                raise Mismatch("batch error message %r does not start with %r (PROTOCOL.md 6.2)" % (val, want))
        return
    if code != 0:
        raise Mismatch("expected a result, got error %s" % ERR_NAME.get(code, code))
    check_value(expect, val, rest, ctx)


class TTLLeft:
    """dttl or ttl without absolute, of a deadline the model knows: milliseconds left, which
    depend on the time: any positive integer up to the deadline minus now."""
    __slots__ = ("deadline",)

    def __init__(self, deadline):
        self.deadline = deadline


def check_value(expect, val, raw, ctx):
    if isinstance(expect, TTLLeft):
        import time as _time
        if type(val) is not int or not 1 <= val <= expect.deadline - int(_time.time() * 1000) + 1000:
            raise Mismatch("expected the milliseconds left until %d, got %s" % (expect.deadline, diag(val)))
        return
    if isinstance(expect, TablesReply):
        got = [x for x in val if isinstance(x, list) and x and isinstance(x[0], str)
               and x[0].startswith(ctx["prefix"])]
        if cb(got) != cb(expect.rows):
            raise Mismatch("tables differ")
        return
    if isinstance(expect, ScanCheck):
        ok = (isinstance(val, list) and len(val) == 2 and is_int(val[0]) and isinstance(val[1], list))
        if not ok:
            raise Mismatch("dscan reply is not [cursor, entries]")
        cur, entries = val
        n = min(expect.count, DSCAN_MAX)
        if expect.cursor == 0:
            if cb(entries) != cb(expect.items[:n]):
                raise Mismatch("dscan from cursor 0 returned other entries than the first %d" % n)
            if cur == 0 and len(entries) != len(expect.items):
                raise Mismatch("dscan cursor 0 (done) before every entry was returned")
        elif expect.cursor == CBOR_MAX and (cur != 0 or entries):
            raise Mismatch("dscan of a cursor beyond the end must be [0, []] (PROTOCOL.md 6.3)")
        if len(entries) > n:
            raise Mismatch("dscan returned more than count entries")
        return
    if isinstance(expect, BatchReply):
        if not (isinstance(val, list) and len(val) == len(expect.results)):
            raise Mismatch("batch result is not an array of %d results" % len(expect.results))
        raws = split_array(raw)
        for k, (sub, got, r) in enumerate(zip(expect.results, val, raws)):
            try:
                check_value(sub, got, r, ctx)
            except Mismatch as m:
                raise Mismatch("batch op %d: %s" % (k, m))
        return
    want = expected_bytes(expect)
    if not isinstance(expect, DictReply) and encode_canonical(val) != bytes(raw):
        if cb(val) == want:
            raise Mismatch("the right value, but the reply is not in canonical form (PROTOCOL.md 5)")
    if bytes(raw) != want:
        raise Mismatch("results differ")


# ============================================================================================
# Generating requests

NAN, INF = float("nan"), float("inf")
INTS = [0, 1, -1, 2, 3, 23, 24, -24, -25, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**32,
        2**53 - 1, 2**53, 2**53 + 1, -2**53 - 1, INT64_MAX, INT64_MAX + 1, INT64_MIN, INT64_MIN - 1,
        CBOR_MAX, CBOR_MIN, CBOR_MAX + 1, CBOR_MIN - 1, 2**70, -2**70, 2**1100, -2**1100,
        2**1100 + 1]
FLOATS = [0.0, -0.0, 1.0, -1.0, 1.5, 0.1, 2.5, 0.5, INF, -INF, NAN, 1e308, -1e308,
          1.7976931348623157e308, 5e-324, 2.0**53, 2.0**53 + 2, 2.0**63, -2.0**63, 2.0**64,
          65504.0, 65520.0, 5.960464477539063e-08, 6.103515625e-05, 3.4028234663852886e38,
          1.401298464324817e-45, 1e-7, 100000.0, 4503599627370497.0, 1e16]
# "\uff61" < "\U0001f600" by code point (and in UTF-8), but not in UTF-16 code units.
TEXTS = ["", "a", "b", "k", "A", "aa", "ab", "é", "日本", "😀", "a\x00b", "z" * 30, "B", "\uff61",
         "\ue000"]
BYTESV = [b"", b"a", b"k", b"\x00", b"\xff\xfe", b"ab"]
SIMPLES = [None, True, False, Undefined, Simple(0), Simple(16), Simple(19), Simple(32), Simple(255)]
TAGS = [55799] * 6 + [32, 100, 1000, 258, 4294967296, CBOR_MAX, 22098, 24, 1010, 37]
DATES = [Tag(0, "2013-03-21T20:04:00Z"), Tag(1, 1363896240), Tag(1, 1.5), Tag(1, -5)]
KEYS = [0, 1, 1.0, True, False, None, Undefined, "a", b"a", "k", [Tag(55799, "k")], ["k"],
        Tag(55799, "k"), Tag(55799, Tag(55799, "k")), CBOR_MAX + 1, 2**70, CBOR_MIN - 1, -0.0, 0.0,
        NAN, [1, 2], Map([("a", 1)]), Simple(16), INT64_MAX, INT64_MIN, 1.5, "é", "", Tag(1, 5),
        5, Map([]), [], Tag(55799, 1), 2**1100, INF]
BADS = [
    Bad(b"\x62a\xff", "invalid UTF-8"),
    Bad(bytes.fromhex("a201010102"), "a map repeating the key 1"),
    Bad(bytes.fromhex("a20101180102"), "a map repeating the key 1 (01, 18 01)"),
    Bad(bytes.fromhex("a2f93c0001fb3ff000000000000002"), "a map repeating the key 1.0 (f16, f64)"),
    Bad(bytes.fromhex("c001"), "tag 0 around an integer"),
    Bad(bytes.fromhex("c16178"), "tag 1 around text"),
]


class Gen:
    def __init__(self, rng, model, names, opts):
        self.rng, self.model, self.names, self.opts = rng, model, names, opts

    # -- values ------------------------------------------------------------------------------------
    def int_(self):
        r = self.rng.random()
        if r < 0.5:
            return self.rng.randint(-30, 30)
        return self.rng.choice(INTS)

    def float_(self):
        r = self.rng.random()
        if r < 0.3:
            return self.rng.randint(-20, 20) / 4.0
        return self.rng.choice(FLOATS)

    def tag(self, v):
        r = self.rng.random()
        if r < 0.12:
            v = Tag(self.rng.choice(TAGS), v)
            if self.rng.random() < 0.25:
                v = Tag(self.rng.choice(TAGS), v)
        return v

    def any_(self, depth=0):
        rng = self.rng
        r = rng.random()
        if depth < 3 and r < 0.12:
            v = [self.any_(depth + 1) for _ in range(rng.randint(0, 3))]
        elif depth < 3 and r < 0.2:
            v = self.map_(depth + 1)
        elif r < 0.42:
            v = self.int_()
        elif r < 0.57:
            v = self.float_()
        elif r < 0.68:
            v = rng.choice(TEXTS)
        elif r < 0.75:
            v = rng.choice(BYTESV)
        elif r < 0.88:
            v = rng.choice(SIMPLES)
        elif r < 0.92:
            v = rng.choice(DATES)
        else:
            v = rng.choice(KEYS)
        return self.tag(v)

    def map_(self, depth):
        pairs, seen = [], set()
        for _ in range(self.rng.randint(0, 3)):
            k = self.key() if self.rng.random() < 0.7 else self.any_(depth)
            b = cb(k)
            if b not in seen:
                seen.add(b)
                pairs.append((k, self.any_(depth)))
        return Map(pairs)

    def key(self):
        return self.rng.choice(KEYS) if self.rng.random() < 0.8 else self.any_(2)

    def flavored(self, flavor):
        rng = self.rng
        if rng.random() < 0.1 or flavor == "any":
            return self.any_()
        if flavor == "num":
            r = rng.random()
            if r < 0.5:
                return self.int_()
            if r < 0.85:
                v = self.float_()
                return v if v == v or rng.random() < 0.3 else 1.25
            return rng.choice([True, False])
        if flavor == "text":
            return rng.choice(TEXTS) if rng.random() < 0.7 else "".join(
                rng.choice("abcXYZé😀") for _ in range(rng.randint(0, 4)))
        if flavor == "arr":
            return [self.flavored("num") if rng.random() < 0.9 else self.any_(2)
                    for _ in range(rng.randint(0, 3))]
        raise AssertionError(flavor)

    def value(self, flavor="any"):
        """A value argument: occasionally invalid CBOR, to check it is refused."""
        if self.rng.random() < 0.008:
            bad = self.rng.choice(BADS)
            return self.rng.choice([bad, [1, bad], Tag(55799, bad), Map([("k", bad)])])
        return self.flavored(flavor)

    # -- typed arguments ---------------------------------------------------------------------------
    WRONG_INT = ["1", 1.0, 0.0, True, False, None, Undefined, INT64_MAX + 1, INT64_MIN - 1,
                 CBOR_MAX, 2**70, Tag(55799, 1), Tag(55799, None), [1], Map([]), b"\x01",
                 Simple(16), -0.0, NAN]

    def wrong_int(self):
        return self.rng.choice(self.WRONG_INT)

    def index(self, n, p_wrong=0.05, null_ok=False):
        rng = self.rng
        r = rng.random()
        if r < p_wrong:
            w = self.wrong_int()
            return w if not (null_ok and w is None) else Undefined
        if r < 0.08:
            return rng.choice([INT64_MIN, INT64_MAX, INT64_MIN + 1, INT64_MAX - 1, -(n + 1), n])
        return rng.randint(-n - 2, n + 1)

    def bound(self, n, step=False):
        rng = self.rng
        r = rng.random()
        if r < 0.25:
            return None
        if r < 0.29:
            return self.wrong_int() if rng.random() < 0.8 else Undefined
        if r < 0.34:
            return rng.choice([INT64_MIN, INT64_MAX, INT64_MIN + 1, -(1 << 62)])
        if step:
            return rng.choice([1, 1, -1, -1, 2, -2, 3, -3, 0, rng.randint(-6, 6)])
        return rng.randint(-n - 3, n + 3)

    def table(self, kind):
        """A table name: mostly one of this kind, sometimes the other kind, a missing or
        invalid name."""
        rng = self.rng
        r = rng.random()
        if r < 0.86:
            return rng.choice(self.names[kind])
        if r < 0.93:
            return rng.choice(self.names["list" if kind == "dict" else "dict"])
        if r < 0.97:
            return rng.choice(self.names["spare"] + [self.names["missing"]])
        return rng.choice(["", "x" * 256, "é" * 128, 5, None, Undefined, b"t",
                           Tag(55799, self.names[kind][0]), [self.names[kind][0]]])

    # -- requests ----------------------------------------------------------------------------------
    DICT_OPS = ["dget", "dset", "ddel", "dhas", "dlen", "dkeys", "dvalues", "ditems", "dpop",
                "dpopitem", "dsetdefault", "dupdate", "dclear", "dtodict", "dincr", "dcas", "dscan"]
    LIST_OPS = ["lget", "lset", "ldel", "lslice", "ldelslice", "lappend", "lextend", "linsert",
                "lpop", "lremove", "lcount", "lindex", "lreverse", "lsort", "lclear", "ltolist",
                "llen", "lrange", "lappendleft", "lpopleft", "lextendleft", "lrotate"]
    WEIGHTS = {"dset": 6, "dget": 4, "dincr": 4, "dupdate": 2, "dpop": 2, "dcas": 3, "dclear": 0.3,
               "lappend": 5, "lextend": 2, "linsert": 3, "lset": 3, "lsort": 4, "lslice": 3,
               "ldelslice": 2, "lsetslice": 6, "lindex": 3, "lremove": 2, "lclear": 0.3,
               "lcontains": 3, "lpop": 3, "dexpire": 2, "dttl": 2, "dgetex": 1.5, "expire": 0.4,
               "ttl": 0.5}

    def pick_op(self, in_batch):
        ops = self.DICT_OPS + self.LIST_OPS + ["tables", "create_dict", "create_list", "exists",
                                               "drop", "len"]
        if self.model.new_ops:
            ops += ["lsetslice", "lcontains"] + TTL_OPS
        if in_batch:
            ops = [o for o in ops if o != "dscan"]
        w = [self.WEIGHTS.get(o, 1) for o in ops]
        return self.rng.choices(ops, w)[0]

    def request(self, in_batch=False):
        """(op, args, kinds): kinds[i] is 'v' for a value position (any CBOR value)."""
        rng = self.rng
        if not in_batch and rng.random() < 0.06:
            return self.batch()
        name = self.pick_op(in_batch)
        op = OP[name]
        args, kinds = self.args(name, in_batch)
        if self.model.new_ops and name in self.OPTS and rng.random() < 0.3:
            args, kinds = self.with_options(name, args, kinds)
        # wrong argument counts: one too few or one too many
        r = rng.random()
        if r < 0.02 and args:
            args, kinds = args[:-1], kinds[:-1]
        elif r < 0.04:
            args, kinds = args + [self.any_()], kinds + ["v"]
        return op, args, kinds

    # Write options (PROTOCOL.md 6.5) of the ops that store a whole value, and where they go.
    OPTS = {"dset": (3, ("at", "keepttl", "nx", "xx")), "dupdate": (2, ("at", "keepttl")),
            "dsetdefault": (3, ("at",)), "dcas": (4, ("at", "keepttl"))}

    def with_options(self, name, args, kinds):
        pos, keys = self.OPTS[name]
        if len(args) != pos:  # options need the optional arguments before them
            if name == "dsetdefault" and len(args) == 2:
                args, kinds = args + [self.value()], kinds + ["v"]
            else:
                return args, kinds
        return args + [self.when(keys)], kinds + ["i"]

    def existing(self, t, what):
        tab = self.model.tables.get(t) if isinstance(t, str) else None
        if tab is None or not tab.data:
            return None
        if tab.kind == "list":
            return self.rng.choice(tab.data).v
        k = self.rng.choice(list(tab.data))
        return k.v if what == "key" else tab.data[k]

    def args(self, name, in_batch=False):
        rng = self.rng
        if name in TTL_OPS:
            return self.ttl_args(name, in_batch)
        if name == "tables":
            return [], []
        if name in ("create_dict", "create_list", "exists", "drop", "len"):
            pool = self.names["spare"] + ([self.names["missing"]] if name in ("exists", "drop", "len") else [])
            t = rng.choice(pool) if rng.random() < 0.7 else self.table(rng.choice(["dict", "list"]))
            if name == "create_dict":
                r = rng.random()
                if r < 0.25:
                    return [t], ["i"]
                return [t, self.dict_content() if r < 0.9 else rng.choice([None, Undefined, 5, "x", [[1]]])], ["i", "v"]
            if name == "create_list":
                r = rng.random()
                if r < 0.25:
                    return [t], ["i"]
                content = [self.value() for _ in range(rng.randint(0, 6))]
                return [t, content if r < 0.9 else rng.choice([None, Undefined, 5, "x", Map([])])], ["i", "v"]
            return [t], ["i"]
        if name.startswith("d"):
            t = self.table("dict")
            k = self.key()
            if rng.random() < 0.3:
                k = self.existing(t, "key") if self.existing(t, "key") is not None else k
            if name in ("dlen", "dkeys", "dvalues", "ditems", "dpopitem", "dclear", "dtodict"):
                return [t], ["i"]
            if name in ("ddel", "dhas"):
                return [t, k], ["i", "v"]
            if name == "dset":
                return [t, k, self.value()], ["i", "v", "v"]
            if name in ("dget", "dpop", "dsetdefault"):
                if rng.random() < 0.5:
                    return [t, k], ["i", "v"]
                return [t, k, self.value()], ["i", "v", "v"]
            if name == "dupdate":
                if rng.random() < 0.005:
                    # a big dict: dscan pages and dict order over hundreds of entries
                    return [t, [[rng.randint(-10**6, 10**6), self.value()] for _ in range(rng.randint(100, 400))]], ["i", "v"]
                c = self.dict_content() if rng.random() < 0.92 else rng.choice(
                    [None, Undefined, 5, "x", [[1]], [[1, 2, 3]], [1]])
                return [t, c], ["i", "v"]
            if name == "dincr":
                if rng.random() < 0.5:
                    k = rng.choice(["n", "m", "f", k])
                r = rng.random()
                if r < 0.25:
                    return [t, k], ["i", "v"]
                if r < 0.35:
                    return [t, k, None], ["i", "v", "v"]
                if r < 0.45:
                    d = rng.choice(["1", True, False, Undefined, [1], Tag(55799, 1), Map([]), b"1",
                                    Simple(16), Tag(1, 5)])
                else:
                    d = self.int_() if rng.random() < 0.6 else self.float_()
                return [t, k, d], ["i", "v", "v"]
            if name == "dcas":
                new = self.value()
                if rng.random() < 0.4:
                    return [t, k, new], ["i", "v", "v"]
                exp = self.existing(t, "value") if rng.random() < 0.5 else None
                if exp is None:
                    exp = self.value()
                return [t, k, new, exp], ["i", "v", "v", "v"]
            if name == "dscan":
                r = rng.random()
                cursor = 0 if r < 0.7 else rng.choice([CBOR_MAX, -1, CBOR_MAX + 1, "0", 0.0, None,
                                                       Undefined, True, Tag(55799, 0)])
                count = rng.randint(1, 12) if rng.random() < 0.8 else rng.choice(
                    [0, -1, INT64_MAX, INT64_MAX + 1, 10001, "1", 1.0, None, Undefined, True])
                return [t, cursor, count], ["i", "i", "i"]
            raise AssertionError(name)
        t = self.table("list")
        tab = self.model.tables.get(t) if isinstance(t, str) else None
        flavor = self.names["flavor"].get(t, "any") if isinstance(t, str) else "any"
        n = len(tab.data) if tab is not None and tab.kind == "list" else 3

        def elem():
            if rng.random() < 0.6:
                e = self.existing(t, "value")
                if e is not None:
                    return e
            return self.value(flavor)

        if name in ("lreverse", "lclear", "ltolist", "llen"):
            return [t], ["i"]
        if name in ("lget", "ldel"):
            return [t, self.index(n)], ["i", "i"]
        if name == "lset":
            return [t, self.index(n), self.value(flavor)], ["i", "i", "v"]
        if name == "linsert":
            return [t, self.index(n), self.value(flavor)], ["i", "i", "v"]
        if name in ("lslice", "ldelslice"):
            k = rng.randint(0, 3)
            b = [self.bound(n), self.bound(n), self.bound(n, step=True)][:k]
            return [t] + b, ["i"] * (1 + k)
        if name == "lsetslice":
            sl = [self.bound(n), self.bound(n), self.bound(n, step=True)]
            size = rng.randint(0, 4)
            try:
                if all(x is None or is_int(x) for x in sl):
                    rng_len_ = len(range(*slice(*sl).indices(n)))
                    if rng.random() < 0.7:
                        size = rng_len_ if rng.random() < 0.8 else max(0, rng_len_ + rng.choice([-1, 1]))
            except (ValueError, OverflowError):
                pass
            vals = [self.value(flavor) for _ in range(size)]
            if rng.random() < 0.04:
                vals = rng.choice([None, Undefined, "ab", Map([]), 5, Tag(55799, [])])
            return [t] + sl + [vals], ["i", "i", "i", "i", "v"]
        if name in ("lappend", "lappendleft"):
            vals = [self.value(flavor) for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 4))]
            return [t] + vals, ["i"] + ["v"] * len(vals)
        if name == "lextendleft":
            vals = [self.value(flavor) for _ in range(rng.randint(0, 4))]
            if rng.random() < 0.05:
                vals = rng.choice([None, "ab", Map([]), 5])
            return [t, vals], ["i", "v"]
        if name == "lpopleft":
            return [t], ["i"]
        if name == "lrotate":
            r = rng.random()
            if r < 0.2:
                return [t], ["i"]
            if r < 0.3:
                return [t, None], ["i", "i"]
            if r < 0.35:
                return [t, rng.choice([INT64_MIN, INT64_MAX, 1.5, "x"])], ["i", "i"]
            return [t, rng.randint(-2 * n - 3, 2 * n + 3)], ["i", "i"]
        if name == "lextend":
            r = rng.random()
            if r < 0.003:
                vals = [self.flavored(flavor) for _ in range(rng.randint(100, 600))]
            elif r < 0.013:
                vals = [self.flavored(flavor) for _ in range(rng.randint(40, 80))]
            else:
                vals = [self.value(flavor) for _ in range(rng.randint(0, 5))]
            if rng.random() < 0.05:
                vals = rng.choice([None, Undefined, "ab", Map([]), 5, Tag(55799, [1])])
            return [t, vals], ["i", "v"]
        if name == "lpop":
            r = rng.random()
            if r < 0.35:
                return [t], ["i"]
            if r < 0.45:
                return [t, None], ["i", "i"]
            return [t, self.index(n, p_wrong=0.1, null_ok=True)], ["i", "i"]
        if name in ("lremove", "lcount", "lcontains"):
            return [t, elem()], ["i", "v"]
        if name == "lindex":
            k = rng.randint(0, 2)
            b = [self.bound(n), self.bound(n)][:k]
            return [t, elem()] + b, ["i", "v"] + ["i"] * k
        if name == "lsort":
            r = rng.random()
            if r < 0.35:
                return [t], ["i"]
            if r < 0.85:
                rev = rng.choice([True, False, None, 0, 1, 2, -1, 7])
            elif r < 0.9:
                rev = rng.choice([C_INT_MAX, C_INT_MIN, C_INT_MAX + 1, C_INT_MIN - 1, INT64_MAX])
            else:
                rev = rng.choice([1.0, 0.0, "x", Undefined, [True], Map([]), Tag(55799, True),
                                  Simple(16), b"\x01", CBOR_MAX + 1])
            return [t, rev], ["i", "i"]
        if name == "lrange":
            r = rng.random()
            if r < 0.8:
                s, c = rng.randint(0, n + 2), rng.randint(0, 6)
            elif r < 0.9:
                s, c = rng.choice([(INT64_MAX, INT64_MAX), (0, INT64_MAX), (INT64_MAX, 1),
                                   (n - 1, INT64_MAX), (-1, 2), (0, -1)])
            else:
                s, c = rng.choice([(None, 1), (0, None), (Undefined, 1), (0, Undefined), (True, 1),
                                   (0, 1.0), ("0", 1), (INT64_MAX + 1, 1)])
            return [t, s, c], ["i", "i", "i"]
        raise AssertionError(name)

    # -- expiry (PROTOCOL.md 6.5): deadlines far ahead or in the past, never in between ---------
    def deadline(self):
        rng = self.rng
        if rng.random() < 0.2:
            return rng.randint(1, 10**12)             # the past: gone at once
        return FAR + rng.randint(0, 10**9)

    def when(self, keys):
        """A "when" or options map of some of keys; now and then an invalid one."""
        rng = self.rng
        r = rng.random()
        if r < 0.06:
            return rng.choice([5, "x", Map([("bogus", 1)]), Map([("nx", False)]),
                               Map([("at", 0)]), Map([("at", MAX_DEADLINE + 1)]), Map([("ttl", 1.5)]),
                               Map([("at", 5), ("persist", True)]), Map([("nx", True), ("xx", True)]),
                               Map([("ttl", -1)]), Map([("ttl", MAX_TTL + 1)]), Map([])])
        pairs = []
        main = rng.choice([k for k in keys if k in ("at", "persist", "keepttl", "ttl")] + [None])
        if main == "at":
            pairs.append(("at", self.deadline()))
        elif main == "ttl":
            pairs.append(("ttl", rng.choice([0, -1, -5000])))  # only where 0 or less is allowed
        elif main is not None:
            pairs.append((main, True))
        for flag in ("nx", "xx"):
            if flag in keys and rng.random() < 0.2 and not any(k in ("nx", "xx") for k, _ in pairs):
                pairs.append((flag, True))
        return Map(pairs)

    def key_with_deadline(self, t, k):
        tab = self.model.tables.get(t) if isinstance(t, str) else None
        return tab is not None and tab.kind == "dict" and V(k) in tab.dl if not isinstance(k, Bad) else False

    def ttl_args(self, name, in_batch):
        rng = self.rng
        if name in ("expire", "ttl"):
            t = self.table(rng.choice(["dict", "list"]))
            tab = self.model.tables.get(t) if isinstance(t, str) else None
            if name == "ttl":
                if tab is not None and tab.tdl == 0 and not in_batch and rng.random() < 0.5:
                    return [t], ["i"]
                return [t, rng.choice([True, True, True, None, 1, "x"])], ["i", "i"]  # null: false
            w = self.when(("at", "persist", "ttl"))
            if rng.random() < 0.7 and isinstance(w, Map) and w.pairs and w.pairs[0][0] in ("at", "ttl") \
                    and rng.random() < 0.8:
                w = Map([("at", FAR + rng.randint(0, 10**9))])  # mostly keep the tables
            return [t, w], ["i", "i"]
        t = self.table("dict")
        k = self.key()
        if rng.random() < 0.6:
            e = self.existing(t, "key")
            k = e if e is not None else k
        if name == "dexpire":
            return [t, k, self.when(("at", "ttl"))], ["i", "v", "i"]
        if name == "dpersist":
            return [t, k], ["i", "v"]
        if name == "dttl":
            if not in_batch and not self.key_with_deadline(t, k) and rng.random() < 0.5:
                return [t, k], ["i", "v"]
            return [t, k, rng.choice([True, True, True, 1, "x"])], ["i", "v", "i"]
        if name == "dgetex":
            return [t, k, self.when(("at", "persist"))], ["i", "v", "i"]
        if name == "ddelifeq":
            v = self.existing(t, "value") if rng.random() < 0.6 else None
            return [t, k, v if v is not None else self.value()], ["i", "v", "v"]
        raise AssertionError(name)

    def dict_content(self):
        rng = self.rng
        pairs = [(self.key(), self.value()) for _ in range(rng.randint(0, 4))]
        if rng.random() < 0.5:
            return [[k, v] for k, v in pairs]
        seen, uniq = set(), []
        for k, v in pairs:
            b = cb(k)
            if b not in seen:
                seen.add(b)
                uniq.append((k, v))
        return Map(uniq)

    def batch(self):
        rng = self.rng
        items = []
        for _ in range(rng.randint(0, 6)):
            op, args, _ = self.request(in_batch=True)
            items.append([op] + args)
        if rng.random() < 0.25 and items:
            # a table made (or dropped) and used within the batch
            focus = rng.choice(self.names["spare"])
            kind = rng.choice(["create_dict", "create_list", "drop"])
            items.insert(0, [OP[kind], focus] + ([] if kind == "drop" else [[]]))
            for it in items[1:]:
                if len(it) > 1 and isinstance(it[1], str) and rng.random() < 0.5:
                    it[1] = focus
        r = rng.random()
        if r < 0.2 and items:
            bad = rng.choice([[2], [1, 1, Map([])], [3], [4], [16, []], [99999], [17, "t"], [0], [69],
                              [65536], "x", 5, [], ["dget", "t"], [24.0, "t"], [Undefined],
                              [None], Tag(55799, [24, self.names["dict"][0]]), [Tag(55799, 24), "t"],
                              [True, "t"], [-1]])
            items.insert(rng.randint(0, len(items)), bad)
        if rng.random() < 0.03:
            return OP["batch"], [rng.choice([Map([]), "x", None, Undefined, Tag(55799, items)])], ["i"]
        return OP["batch"], [items], ["i"]


def encode_request(rid, op, args, kinds, rng, bignum_args):
    """The request bytes: [id, op, args...], each argument in a random valid encoding. Integers
    of the CBOR range go out as bignums only in value positions (unless bignum_args)."""
    out = bytearray()
    _whead(4, 2 + len(args), out, None, 0)
    _whead(0, rid, out, None, 0)
    _whead(0, op, out, rng, 0.05)
    for a, k in zip(args, kinds):
        if op == OP["batch"] and isinstance(a, list):
            # op numbers are not "integer arguments": a bignum op is not promised to work
            _whead(4, len(a), out, rng, 0.1)
            for it in a:
                if isinstance(it, list) and it and is_int(it[0]) and 0 <= it[0] <= CBOR_MAX:
                    _whead(4, len(it), out, rng, 0.1)
                    _whead(0, it[0], out, rng, 0.1)
                    for x in it[1:]:
                        _wire(x, out, rng, 0.15, bignum_args)
                else:
                    _wire(it, out, rng, 0.15, bignum_args)
            continue
        _wire(a, out, rng, 0.15, k == "v" or bignum_args)
    return bytes(out)


# ============================================================================================
# Running a seed

def diag_expect(e):
    if isinstance(e, Err):
        s = "error %s (%d): %s" % (e.code, ERR[e.code], e.why)
        if e.batch_k is not None:
            s += "; message prefix 'batch op %d%s: '" % (
                e.batch_k, " (%s)" % e.batch_name if e.batch_name else "")
        return s
    if isinstance(e, TablesReply):
        return diag(e.rows) + " (tables of this run only)"
    if isinstance(e, BatchReply):
        return "[" + ", ".join(diag_expect(x) for x in e.results) + "]"
    if isinstance(e, DictReply):
        return "{" + ", ".join("%s: %s" % (diag(k), diag(v)) for k, v in e.pairs) + "} (insertion order)"
    if isinstance(e, ScanCheck):
        return "a dscan page of the entries %s from cursor %d, at most %d" % (diag(e.items), e.cursor, e.count)
    if isinstance(e, SortCheck):
        return "the list sorted by some correct comparison sort, or type_error and unchanged"
    if isinstance(e, TTLLeft):
        return "the milliseconds left until %d" % e.deadline
    return diag(decode(cb(e), strict=True))  # as the daemon must send it: canonical


def rename(v, old, new):
    if isinstance(v, str):
        return new + v[len(old):] if v.startswith(old) else v
    if isinstance(v, list):
        return [rename(x, old, new) for x in v]
    if isinstance(v, Tag):
        return Tag(v.tag, rename(v.value, old, new))
    if isinstance(v, Map):
        return Map([(rename(k, old, new), rename(x, old, new)) for k, x in v.pairs])
    return v


class Stats:
    def __init__(self):
        self.ok = {}
        self.err = {}
        self.steps = 0
        self.long_sorts = 0  # lsort of 64+ elements with arrays or NaN: checked, not predicted
        self.full_scans = 0  # dscan loops from cursor 0 to the end

    def add(self, op, expect):
        name = OP_NAME.get(op, "op_%s" % op)
        if isinstance(expect, Err):
            d = self.err.setdefault(name, {})
            d[expect.code] = d.get(expect.code, 0) + 1
        else:
            self.ok[name] = self.ok.get(name, 0) + 1

    def merge(self, o):
        self.steps += o.steps
        self.long_sorts += o.long_sorts
        self.full_scans += o.full_scans
        for k, v in o.ok.items():
            self.ok[k] = self.ok.get(k, 0) + v
        for k, d in o.err.items():
            m = self.err.setdefault(k, {})
            for c, n in d.items():
                m[c] = m.get(c, 0) + n


SKIPPED = object()


class Divergence(Exception):
    pass


class Lost(Exception):
    """The connection broke (the daemon crashed, hung past the time-out, or closed it)."""


def _reply_code(reply):
    try:
        return split_reply(reply)[1]
    except Exception:  # noqa: BLE001
        return None


class Pending:
    __slots__ = ("step", "rid", "op", "args", "kinds", "body", "expect", "snap", "wseed", "known")

    def __init__(self, **kw):
        self.known = []
        for k, v in kw.items():
            setattr(self, k, v)


# Places where the daemon contradicts PROTOCOL.md itself (not Python) and the fix is still
# open: the reply is checked against what the daemon is known to do instead, counted and shown
# as KNOWN, and does not fail the run. Each entry: name -> what the spec says and what happens.
KNOWN = {}  # none open


def known_quirks(op, args):
    """The KNOWN entries that may explain a divergence of this request."""
    return []


class Run:
    """One seed: a connection, a model, a generator and a window of pipelined requests."""

    WINDOW = 64
    SYNC_EVERY = 25

    def __init__(self, sock, seed, steps, opts, new_ops, out):
        self.sock, self.seed, self.steps, self.opts, self.out = sock, seed, steps, opts, out
        self.rng = random.Random(seed)
        self.prefix = "dt%d_%d_" % (os.getpid(), seed)
        self.model = Model(new_ops)
        self.names = {
            "dict": [self.prefix + "D0", self.prefix + "D1"],
            "list": [self.prefix + n for n in ("L0", "L1", "L2", "L3")],
            "spare": [self.prefix + "X0", self.prefix + "X1"],
            "missing": self.prefix + "M",
            "flavor": {self.prefix + "L0": "num", self.prefix + "L1": "text",
                       self.prefix + "L2": "arr", self.prefix + "L3": "any"},
        }
        self.gen = Gen(self.rng, self.model, self.names, opts)
        self.stats = Stats()
        self.pending = []
        self.next_id = 1
        self.divergences = []
        self.repros = 0
        self.c = Client().connect(sock, timeout=60)
        self.c.hello(client="difftest.py seed %d" % seed)

    def ctx(self, prefix=None):
        return {"prefix": prefix or self.prefix}

    # -- sending and checking -----------------------------------------------------------------
    def send(self, step, op, args, kinds):
        """Apply the request to the model, send it, and queue its check. False: not sent."""
        if self.opts.avoid and any(avoided(a, self.opts.avoid) for a in args):
            return False
        # Make room first: checking a reply may find a divergence and reload the model from
        # the daemon, which must happen before this request touches the model.
        if len(self.pending) >= self.WINDOW:
            self.check_one()
        snap = self.model.snapshot()
        expect = self.expect(op, args, snap)
        if expect is SKIPPED:
            return False
        if isinstance(expect, SortCheck):
            self.model.restore(snap)
            self.drain()
            snap = self.model.snapshot()
            expect = self.expect(op, args, snap)
            if isinstance(expect, SortCheck):
                self.sort_check(step, op, args, kinds, expect, snap)
                return True
            if expect is SKIPPED:
                return False
        known = []
        quirks = known_quirks(op, args)
        for qs in [[q] for q in quirks] + ([quirks] if len(quirks) > 1 else []):
            alt = Model(self.model.new_ops, quirks=qs)
            alt.restore(snap)
            try:
                known.append((" + ".join(qs), alt.request(op, args)))
            except Err as e:
                known.append((" + ".join(qs), e))
        rid = self.next_id
        self.next_id += 1
        wseed = self.rng.getrandbits(32)
        body = encode_request(rid, op, FAULTS[self.opts.fault][0](op, args) if self.opts.fault else args,
                              kinds, random.Random(wseed), self.opts.bignum_args)
        self.c.send_frame(body)
        self.pending.append(Pending(step=step, rid=rid, op=op, args=args, kinds=kinds, body=body,
                                    expect=expect, snap=snap, wseed=wseed, known=known))
        self.stats.add(op, expect)
        return True

    def expect(self, op, args, snap):
        try:
            return self.model.request(op, args)
        except Err as e:
            return e
        except Skip:
            self.model.restore(snap)
            return SKIPPED

    def check_one(self):
        p = self.pending.pop(0)
        try:
            reply = self.c.recv_frame()
        except (OSError, ConnectionClosed) as e:
            raise Lost("no reply to the request of seed %d step %d: %s\n  request: %s\n"
                       "           hex %s\n  replay:  python3 difftest.py SOCKET --seeds %d --steps %d"
                       % (self.seed, p.step, e, diag_bytes(p.body, [p.rid, p.op] + list(p.args)),
                          p.body.hex(), self.seed, p.step + 1))
        if self.opts.fault:
            reply = FAULTS[self.opts.fault][1](p.op, reply)
        try:
            compare(p.expect, reply, p.rid, self.ctx())
        except Mismatch as m:
            for name, alt in p.known:
                try:
                    compare(alt, reply, p.rid, self.ctx())
                except Mismatch:
                    continue
                # The spec's expectation and the known one are both errors or reads here, so
                # the model's state is right either way.
                n = self.opts.known_seen.get(name, 0)
                self.opts.known_seen[name] = n + 1
                if n == 0:
                    self.out("KNOWN (not failed) %s, seed %d step %d: %s\n  request %s\n  daemon  %s\n"
                             "  spec    %s" % (name, self.seed, p.step,
                                               " + ".join(KNOWN[q] for q in name.split(" + ")),
                                               diag_bytes(p.body, [p.rid, p.op] + list(p.args)),
                                               diag_bytes(reply), diag_expect(p.expect)))
                return
            self.diverged(p, reply, m)

    def drain(self):
        while self.pending:
            self.check_one()

    def call(self, op, *args):
        rid = self.next_id
        self.next_id += 1
        self.c.send_frame(encode_request(rid, op, list(args), ["v"] * len(args), None, False))
        gid, code, rest = split_reply(self.c.recv_frame())
        val = decode(rest, strict=True)
        if code:
            raise CyberDBError(code, ERR_NAME.get(code, "unknown"), val)
        return val

    # -- lsort of a long list whose order no model can predict ----------------------------------
    def sort_check(self, step, op, args, kinds, expect, snap):
        self.stats.long_sorts += 1
        tab = expect.tab
        before = [e.v for e in tab.data]
        rid = self.next_id
        self.next_id += 1
        body = encode_request(rid, op, args, kinds, None, False)
        self.c.send_frame(body)
        reply = self.c.recv_frame()
        gid, code, rest = split_reply(reply)
        after = self.call(OP["ltolist"], args[0])
        self.stats.add(op, None if code == 0 else Err(ERR_NAME.get(code, "?"), ""))
        problem = None
        if code not in (0, ERR["type_error"]):
            problem = "lsort gave %s" % ERR_NAME.get(code, code)
        elif code and cb(after) != cb(before):
            problem = "lsort failed with type_error but changed the list (PROTOCOL.md 6.4)"
        elif sorted(cb(x) for x in after) != sorted(cb(x) for x in before):
            problem = "lsort result is not a permutation of the list"
        elif code == 0:
            keys = [sort_key(x) for x in after]
            for i in range(len(keys) - 1):
                a, b = (keys[i], keys[i + 1]) if not expect.reverse else (keys[i + 1], keys[i])
                try:
                    if b < a:
                        problem = "lsort result out of order at %d: %s then %s" % (i, diag(after[i]), diag(after[i + 1]))
                        break
                except TypeError:
                    pass
        if problem:
            p = Pending(step=step, rid=rid, op=op, args=args, kinds=kinds, body=body, expect=expect,
                        snap=snap, wseed=0)
            self.diverged(p, reply, Mismatch(problem), reproduce=False)
        tab.data[:] = [V(x) for x in after]

    # -- full scans ------------------------------------------------------------------------------
    def full_scan(self, step, t):
        self.drain()
        tab = self.model.tables.get(t)
        if tab is None or tab.kind != "dict":
            return
        want = [[k.v, x] for k, x in tab.data.items()]
        got, cursor, calls = [], 0, 0
        while True:
            count = self.rng.choice([1, 2, 3, 7, 100, 10001])
            cursor, page = self.call(OP["dscan"], t, cursor, count)
            calls += 1
            got += page
            if len(page) > min(count, DSCAN_MAX):
                break
            if cursor == 0 or calls > len(want) + 3:
                break
        self.stats.add(OP["dscan"], None)
        self.stats.full_scans += 1
        if cb(got) != cb(want):
            body = encode_request(0, OP["dscan"], [t, 0, 1], ["i"] * 3, None, False)
            p = Pending(step=step, rid=0, op=OP["dscan"], args=[t, 0, "..."], kinds=["i"] * 3,
                        body=body, expect=want, snap=self.model.snapshot(), wseed=0)
            self.diverged(p, encode_canonical([0, 0, got]), Mismatch(
                "a full dscan (%d calls) did not return every entry once, in order" % calls),
                reproduce=False)

    # -- divergences -----------------------------------------------------------------------------
    def diverged(self, p, reply, mismatch, reproduce=True):
        """Report; then stop the seed, or (keep-going) resynchronise the model and go on.
        A divergence of a kind already shown in full (same op, same codes) gets one line."""
        self.divergences.append((p, mismatch))
        w = self.out
        name = OP_NAME.get(p.op, "op_%s" % p.op)
        sig = (p.op, str(mismatch), p.expect.code if isinstance(p.expect, Err) else "ok",
               _reply_code(reply))
        seen = self.opts.seen
        seen[sig] = seen.get(sig, 0) + 1
        if seen[sig] > 1:
            w("DIVERGENCE seed %d step %d: %s again (%s): %s" % (
                self.seed, p.step, name, mismatch, diag_bytes(p.body, [p.rid, p.op] + list(p.args))))
            self._skip_pending()
            return self._after()
        w("")
        w("DIVERGENCE seed %d step %d: %s (op %d) -- %s" % (self.seed, p.step, name, p.op, mismatch))
        w("  request: %s" % diag_bytes(p.body, [p.rid, p.op] + list(p.args)))
        w("           hex %s" % p.body.hex())
        if self.opts.fault:
            w("           (as sent: --fault %s rewrites requests and replies)" % self.opts.fault)
        w("  daemon:  %s" % diag_bytes(reply))
        w("           hex %s" % bytes(reply).hex())
        w("  python:  %s" % diag_expect(p.expect))
        for n in sorted(n for n in p.snap if self._mentions(p.args, n)):
            t = p.snap[n]
            w("  before:  %s %s = %s" % (t.kind, diag(n), diag(t.contents())))
        w("  replay:  python3 difftest.py SOCKET --seeds %d --steps %d" % (self.seed, p.step + 1))
        self._skip_pending()
        if reproduce and self.repros < self.opts.max_repros:
            self.repros += 1
            try:
                self.minimal(p)
            except (OSError, DecodeError, CyberDBError) as e:
                w("  (reproduction failed: %s)" % e)
        self._after()

    def _skip_pending(self):
        # Keep the connection in step: read the replies of requests already sent.
        rest, self.pending = self.pending, []
        for _ in rest:
            self.c.recv_frame()

    def _after(self):
        if len(self.divergences) >= self.opts.keep_going:
            raise Divergence()
        self.resync()

    @staticmethod
    def _mentions(v, name):
        if isinstance(v, str):
            return v == name
        if isinstance(v, list):
            return any(Run._mentions(x, name) for x in v)
        if isinstance(v, Tag):
            return Run._mentions(v.value, name)
        return False

    def resync(self):
        """Load the daemon's state of every table of this run into the model."""
        self.model.tables = {}
        for name, kind, _ in self.call(OP["tables"]):
            if not name.startswith(self.prefix):
                continue
            if kind == "list":
                self.model.tables[name] = Table("list", [V(x) for x in self.call(OP["ltolist"], name)])
            else:
                d = {}
                for k, x in self.call(OP["ditems"], name):
                    d[V(k)] = x
                self.model.tables[name] = Table("dict", d)

    def attempt(self, tables, p, prefix):
        """Build tables on fresh names, send p's request renamed, compare. Returns
        (mismatch or None, setup, body, reply, expect, request as generated)."""
        setup = []
        for n, t in tables.items():
            if t.kind == "list":
                setup.append([OP["create_list"], n, [e.v for e in t.data]])
            else:
                setup.append([OP["create_dict"], n, [[k.v, x] for k, x in t.data.items()]])
        for req in setup:
            self.call(*req)
        args = rename(p.args, self.prefix, prefix)
        model = Model(self.model.new_ops)
        model.tables = {n: t.copy() for n, t in tables.items()}
        try:
            expect = model.request(p.op, args)
        except Err as e:
            expect = e
        rid = self.next_id
        self.next_id += 1
        sent = FAULTS[self.opts.fault][0](p.op, args) if self.opts.fault else args
        body = encode_request(rid, p.op, sent, p.kinds, random.Random(p.wseed), self.opts.bignum_args)
        self.c.send_frame(body)
        reply = self.c.recv_frame()
        if self.opts.fault:
            reply = FAULTS[self.opts.fault][1](p.op, reply)
        try:
            compare(expect, reply, rid, self.ctx(prefix))
            mismatch = None
        except Mismatch as m:
            mismatch = m
        for n, _, _ in self.call(OP["tables"]):
            if n.startswith(prefix):
                self.call(OP["drop"], n)
        return mismatch, setup, body, reply, expect, [rid, p.op] + list(args)

    def minimal(self, p):
        """Rebuild the state before the step on fresh tables and shrink it while the request
        still diverges; print the smallest reproduction found."""
        w = self.out
        prefix = "dt%dr%d_%d_" % (os.getpid(), self.seed, self.repros)
        tables = {rename(n, self.prefix, prefix): t.copy() for n, t in p.snap.items()}
        res = self.attempt(tables, p, prefix)
        if res[0] is None:
            w("  minimal: does not reproduce from the state alone (history-dependent); use replay")
            return
        budget = 150

        def still(cand):
            nonlocal budget, res
            if budget <= 0:
                return False
            budget -= 1
            r = self.attempt(cand, p, prefix)
            if r[0] is not None:
                res = r
                return True
            return False

        for n in list(tables):
            cand = dict(tables)
            del cand[n]
            if still(cand):
                tables = cand
        for n in list(tables):
            t = tables[n]
            if t.kind == "list":
                items = list(t.data)
            else:
                items = list(t.data.items())
            chunk = max(1, len(items) // 2)
            while chunk >= 1 and items:
                i, changed = 0, False
                while i < len(items):
                    trial = items[:i] + items[i + chunk:]
                    cand = dict(tables)
                    cand[n] = Table(t.kind, trial if t.kind == "list" else dict(trial))
                    if still(cand):
                        items, tables, changed = trial, cand, True
                    else:
                        i += chunk
                if chunk == 1 and not changed:
                    break
                chunk = max(1, chunk // 2) if chunk > 1 else 1
                if chunk == 1 and not changed and len(items) <= 1:
                    break
        mismatch, setup, body, reply, expect, req = res
        w("  minimal reproduction (state shrunk, %s):" % mismatch)
        for req in setup:
            w("    setup   %s" % diag([0] + req))
        w("    request %s" % diag_bytes(body, req))
        w("            hex %s" % body.hex())
        w("    daemon  %s" % diag_bytes(reply))
        w("            hex %s" % bytes(reply).hex())
        w("    python  %s" % diag_expect(expect))

    # -- the run -----------------------------------------------------------------------------------
    def restock(self, step):
        """Bring back the run's main tables (dropped or re-created as the other kind by random
        requests), so most requests reach a table of their kind."""
        for kind in ("dict", "list"):
            for n in self.names[kind]:
                t = self.model.tables.get(n)
                if t is not None and t.kind == kind:
                    continue
                if t is not None:
                    self.send(step, OP["drop"], [n], ["i"])
                if kind == "dict":
                    self.send(step, OP["create_dict"], [n, self.gen.dict_content()], ["i", "v"])
                else:
                    vals = [self.gen.flavored(self.names["flavor"][n]) for _ in range(self.rng.randint(0, 8))]
                    self.send(step, OP["create_list"], [n, vals], ["i", "v"])

    def sync(self, step):
        """Compare the full contents of every table of the run."""
        self.restock(step)
        self.send(step, OP["tables"], [], [])
        for n in sorted(self.model.tables):
            kind = self.model.tables[n].kind
            if kind == "list":
                self.send(step, OP["ltolist"], [n], ["i"])
            else:
                op = OP["ditems"] if self.rng.random() < 0.7 else OP["dtodict"]
                self.send(step, op, [n], ["i"])

    def run(self):
        # leftovers of an earlier run with the same pid and seed
        for n, _, _ in self.call(OP["tables"]):
            if n.startswith(self.prefix):
                self.call(OP["drop"], n)
        try:
            self.restock(-1)
            step = 0
            while step < self.steps:
                if step % self.SYNC_EVERY == 0:
                    self.sync(step)
                if self.rng.random() < 0.01:
                    self.full_scan(step, self.rng.choice(self.names["dict"]))
                op, args, kinds = self.gen.request()
                if self.send(step, op, args, kinds):
                    step += 1
            self.sync(step)
            self.drain()
        except Divergence:
            pass
        finally:
            self.stats.steps = self.next_id
            try:
                for n, _, _ in self.call(OP["tables"]):
                    if n.startswith(self.prefix):
                        self.call(OP["drop"], n)
            except Exception:  # noqa: BLE001 - the connection may be gone
                pass
            self.c.close()
        return self.divergences


# --fault NAME breaks one op on purpose, between this client and the daemon (requests rewritten
# before they are sent, replies after they arrive), to show the test catches a broken op.
# Each: (rewrite request args, rewrite reply body, what it breaks).

def _same_args(op, args):
    return args


def _same_reply(op, body):
    return body


def _lindex_off_by_one(op, body):
    if op != OP["lindex"]:
        return body
    rid, code, rest = split_reply(body)
    r = decode(rest, strict=True)
    if code == 0 and is_int(r) and r > 0:
        return encode_canonical([rid, 0, r + 1])
    return body


def _undefined_is_null(op, args):
    if op in (OP["ldelslice"], OP["lslice"], OP["lpop"], OP["lindex"]):
        return [None if a is Undefined else a for a in args]
    return args


def _ignore_negative_step(op, args):
    if op == OP["lsetslice"] and len(args) == 5 and is_int(args[3]) and args[3] < -1:
        return args[:3] + [-args[3]] + args[4:]
    return args


FAULTS = {
    "lindex-off-by-one": (_same_args, _lindex_off_by_one,
                          "lindex answers one more than the index found, when it is not 0"),
    "undefined-is-null": (_undefined_is_null, _same_reply,
                          "undefined taken for a left-out bound in lslice/ldelslice/lpop/lindex "
                          "(main's defect of issue 11)"),
    "lsetslice-step-sign": (_ignore_negative_step, _same_reply,
                            "lsetslice with a step below -1 walks forwards"),
}


def avoided(v, avoid):
    """Whether v holds something --avoid leaves out (to look past a known divergence)."""
    if isinstance(v, Tag):
        return str(v.tag) in avoid or avoided(v.value, avoid)
    if v is Undefined:
        return "undefined" in avoid
    if isinstance(v, Bad):
        return "invalid" in avoid
    if isinstance(v, list):
        return any(avoided(x, avoid) for x in v)
    if isinstance(v, Map):
        return any(avoided(k, avoid) or avoided(x, avoid) for k, x in v.pairs)
    return False


def parse_seeds(s):
    out = []
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part[1:]:
            a, b = part.split("-", 1)
            out += list(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def probe_new_ops(sock):
    """Whether the daemon has lsetslice/lcontains (issue 11): an old daemon answers
    unknown_op, a new one no_such_table for a missing table."""
    with Client().connect(sock) as c:
        c.hello(client="difftest.py probe")
        for op in NEW_OPS.values():
            try:
                c.call(op, "difftest-probe-missing-%d" % os.getpid(), 0, 0, 0, [])
            except CyberDBError as e:
                if e.name == "unknown_op":
                    return False
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("socket", nargs="?", default=os.environ.get("CYBERDB_SOCKET"))
    ap.add_argument("--seeds", default=os.environ.get("CYBERDB_DIFFTEST_SEEDS", "1-8"),
                    help="seeds: 1,2,5-9 (env CYBERDB_DIFFTEST_SEEDS; default 1-8)")
    ap.add_argument("--steps", type=int, default=int(os.environ.get("CYBERDB_DIFFTEST_STEPS", "2000")),
                    help="random requests per seed (env CYBERDB_DIFFTEST_STEPS; default 2000)")
    ap.add_argument("--keep-going", type=int, default=1, metavar="N",
                    help="report up to N divergences per seed, resynchronising after each (default 1)")
    ap.add_argument("--max-repros", type=int, default=3, metavar="N",
                    help="shrink at most N divergences per seed into minimal reproductions")
    ap.add_argument("--no-bignum-args", dest="bignum_args", action="store_false",
                    help="never send integer arguments (indices, counts, cursors, reverse) as "
                         "bignums 2(h'..'); by default they sometimes are (PROTOCOL.md 5: only "
                         "the value counts)")
    ap.add_argument("--no-new-ops", action="store_true", help="leave out lsetslice and lcontains")
    ap.add_argument("--fault", choices=sorted(FAULTS), default=None,
                    help="break one op on purpose between client and daemon (to show that the "
                         "test fails): " + "; ".join("%s: %s" % (k, v[2]) for k, v in sorted(FAULTS.items())))
    ap.add_argument("--avoid", default="", metavar="LIST",
                    help="send no request holding these (comma-separated: a tag number such as "
                         "55799, 'undefined', 'invalid'), to look past a known divergence")
    ap.add_argument("-v", "--verbose", action="store_true", help="print per-op coverage")
    opts = ap.parse_args(argv)
    opts.seen = {}  # divergence signatures already shown in full
    opts.known_seen = {}  # KNOWN name -> count
    opts.avoid = set(x.strip() for x in opts.avoid.split(",") if x.strip())
    if not opts.socket:
        ap.error("give the daemon's socket (or set CYBERDB_SOCKET)")
    seeds = parse_seeds(opts.seeds)
    if opts.fault:
        print("fault injected on purpose: %s (%s)" % (opts.fault, FAULTS[opts.fault][2]))
    new_ops = not opts.no_new_ops and probe_new_ops(opts.socket)
    if not new_ops:
        print("note: lsetslice (58) and lcontains (59) not tested: %s" %
              ("--no-new-ops" if opts.no_new_ops else "the daemon answers unknown_op (a daemon before issue 11)"))

    def out(line):
        print(line, flush=True)

    total, failed, t0 = Stats(), [], time.monotonic()
    for seed in seeds:
        ts = time.monotonic()
        r = Run(opts.socket, seed, opts.steps, opts, new_ops, out)
        try:
            divs = r.run()
        except (Lost, OSError, ConnectionClosed) as e:
            out("\nCONNECTION LOST: %s" % e)
            out("difftest: FAILED (seed %d: the daemon stopped answering)" % seed)
            return 1
        total.merge(r.stats)
        if divs:
            failed.append(seed)
        out("seed %d: %d steps, %d requests, %s (%.1f s)" % (
            seed, opts.steps, r.stats.steps, "%d divergence(s)" % len(divs) if divs else "agrees with Python",
            time.monotonic() - ts))
    if opts.verbose or failed:
        out("coverage (ok results / error codes per op):")
        for name in sorted(set(total.ok) | set(total.err), key=lambda n: OP.get(n, 1 << 20)):
            errs = ", ".join("%s %d" % kv for kv in sorted(total.err.get(name, {}).items()))
            out("  %-12s ok %-6d %s" % (name, total.ok.get(name, 0), errs))
        out("  full dscan loops %d; lsort of 64+ elements holding arrays or NaN (checked for a "
            "sorted permutation) %d" % (total.full_scans, total.long_sorts))
    for name, n in sorted(opts.known_seen.items()):
        out("KNOWN (not failed): %s seen %d times" % (name, n))
    unseen = sorted(set(KNOWN) - set(q for name in opts.known_seen for q in name.split(" + ")))
    if unseen and opts.steps * len(seeds) >= 50000:
        out("KNOWN entries not seen in this run (fixed? then remove them from KNOWN): %s" % ", ".join(unseen))
    missing = [n for n in list(Gen.DICT_OPS) + list(Gen.LIST_OPS) + (list(NEW_OPS) if new_ops else [])
               + ["tables", "create_dict", "create_list", "exists", "drop", "len", "batch"]
               if n not in total.ok]
    if missing and opts.steps >= 1000 and not failed:
        out("FAIL: ops never run successfully: %s" % ", ".join(missing))
        failed.append("coverage")
    out("difftest: %d seeds x %d steps, %d requests in %.1f s: %s" % (
        len(seeds), opts.steps, total.steps, time.monotonic() - t0,
        "FAILED (seeds %s)" % ", ".join(map(str, failed)) if failed else "no divergence from Python"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
