#!/usr/bin/env python3
"""Interop test of cyberdb_client.py against a running cyberdbd, written from PROTOCOL.md only.

    python3 test_interop.py /path/to/cyberdb.sock      (or CYBERDB_SOCKET=... python3 test_interop.py)

Every table operation is run side by side on the daemon and on a real Python dict/list, and the
results (and errors) must agree: Python's semantics are the specification. Exit status is 0 only
if every check passed; the last line is "N passed, M failed".

Checks named in KNOWN_DAEMON_BUGS test places where the daemon contradicts PROTOCOL.md. They are
run and reported, but do not fail the run (if one starts passing, that is reported too).
"""

import math
import collections
import os
import struct
import time
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cyberdb_client import (  # noqa: E402
    ERR, OP, Client, ConnectionClosed, CyberDBError, Raw, Tag, decode, encode,
)

# Checks that fail because the daemon contradicts PROTOCOL.md (see README.md, "Daemon bugs").
KNOWN_DAEMON_BUGS = {
    # Empty: every bug this client found has been fixed in the daemon, or the spec was
    # clarified (see README.md, "Daemon bugs" and "Spec gaps"). Add names of failing checks
    # here only while a reported daemon bug is open.
}

PASSED = 0
FAILED = []
KNOWN_SEEN = []
KNOWN_FIXED = []


def check(name, ok, detail=""):
    global PASSED
    if name in KNOWN_DAEMON_BUGS:
        if ok:
            KNOWN_FIXED.append(name)
            PASSED += 1
        else:
            KNOWN_SEEN.append(name)
            print("KNOWN DAEMON BUG (not failed): %s %s" % (name, detail))
        return ok
    if ok:
        PASSED += 1
    else:
        FAILED.append(name)
        print("FAIL: %s %s" % (name, detail))
    return ok


# ----------------------------------------------------------------------------------------------
# Strict equality: 1, 1.0 and True differ; floats compare by bits (0.0 != -0.0, NaN == NaN).

def same(a, b):
    if type(a) is not type(b):
        if isinstance(a, tuple) and isinstance(b, list) or isinstance(a, list) and isinstance(b, tuple):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        return False
    if isinstance(a, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return same(list(a.items()), list(b.items()))
    if isinstance(a, Tag):
        return a.tag == b.tag and same(a.value, b.value)
    return a == b


PY_ERR = {
    KeyError: "key_not_found",
    IndexError: "index_out_of_range",
    ValueError: "value_not_found",
    TypeError: "type_error",
    OverflowError: "overflow",
}


def py_outcome(fn, value_error="value_not_found"):
    try:
        return ("ok", fn())
    except ValueError:
        return ("err", value_error)
    except (KeyError, IndexError, TypeError, OverflowError) as e:
        return ("err", PY_ERR[type(e)])


def db_outcome(c, op, *args):
    try:
        return ("ok", c.call(op, *args))
    except CyberDBError as e:
        return ("err", e.name)


def expect_err(c, name, code_name, op, *args):
    try:
        got = c.call(op, *args)
        return check(name, False, "expected %s, got result %r" % (code_name, got))
    except CyberDBError as e:
        return check(name, e.name == code_name and e.code == ERR[code_name],
                     "expected %s, got %s (%d): %s" % (code_name, e.name, e.code, e.message))


# ----------------------------------------------------------------------------------------------

class Suite:
    def __init__(self, path):
        self.path = path
        self.prefix = "pyinterop_%d_" % os.getpid()

    def t(self, name):
        return self.prefix + name

    def conn(self, hello=True):
        c = Client().connect(self.path)
        if hello:
            c.hello(client="test_interop.py")
        return c

    # -- handshake ---------------------------------------------------------------------------
    def test_handshake(self):
        c = self.conn(hello=False)
        t = self.t("hs")
        expect_err(c, "handshake: ping before HELLO", "handshake", OP["ping"])
        expect_err(c, "handshake: create before HELLO", "handshake", OP["create_dict"], t)
        expect_err(c, "handshake: unknown op before HELLO", "handshake", 99)
        expect_err(c, "handshake: unsupported version", "handshake", OP["hello"], 2, {})
        info = c.hello(client="test_interop.py", unknown_option_is_ignored=True)
        check("handshake: HELLO result", isinstance(info, dict) and info.get("proto") == 1
              and info.get("server") == "cyberdbd" and isinstance(info.get("max_frame"), int)
              and isinstance(info.get("conn_id"), int) and isinstance(info.get("version"), str)
              and set(["batch", "scan", "cas", "incr", "pipelining"]) <= set(info.get("features", [])),
              repr(info))
        check("handshake: request before HELLO changed nothing", c.call(OP["exists"], t) is False)
        expect_err(c, "handshake: second HELLO", "handshake", OP["hello"], 1, {})
        check("handshake: connection usable after second HELLO", c.call(OP["ping"]) == "PONG")
        c.close()

        # HELLO with options omitted; the wire example from section 8.
        c = self.conn(hello=False)
        c.sock.sendall(bytes.fromhex("0000000584010101a0"))
        r = decode(c.recv_frame())
        check("handshake: section 8 example bytes", r[0] == 1 and r[1] == 0 and r[2]["proto"] == 1, repr(r))
        c.close()
        c = self.conn(hello=False)
        check("handshake: HELLO without options", c.call(OP["hello"], 1)["proto"] == 1)
        c.close()

        # Until HELLO succeeds a frame may be 4096 bytes: a bigger one gets too_large (id 0)
        # before its body is read, and the connection is closed (PROTOCOL.md section 4).
        c = self.conn(hello=False)
        c.sock.sendall(struct.pack(">I", 4097))
        r = decode(c.recv_frame())
        check("handshake: frame over 4096 bytes before HELLO", r[0] == 0 and r[1] == ERR["too_large"]
              and "before a successful HELLO" in r[2], repr(r))
        check("handshake: closed after too_large before HELLO", c.sock.recv(1) == b"", "connection still open")
        c.close()

        # Pipelined HELLO + first requests without waiting.
        c = self.conn(hello=False)
        c.send(OP["hello"], 1, {"client": "pipelined"})
        c.send(OP["ping"], "after-hello")
        c.recv()
        check("handshake: HELLO may be pipelined", c.recv() == "after-hello")
        c.close()

        # A failed HELLO (bad version) does not prevent a correct one.
        c = self.conn(hello=False)
        try:
            c.call(OP["hello"], 99, {})
        except CyberDBError:
            pass
        check("handshake: good HELLO after failed HELLO", c.call(OP["hello"], 1, {})["proto"] == 1)
        c.close()

    # -- connection ops ----------------------------------------------------------------------
    def test_server_ops(self, c):
        check("ping: no payload", same(c.call(OP["ping"]), "PONG"))
        payload = [1, -2, 2.5, "x", b"\x00", None, True, {"a": [1, {"b": 2}]}]
        check("ping: payload echoed", same(c.call(OP["ping"], payload), payload))
        check("ping: null payload echoed", c.call(OP["ping"], None) is None)
        info = c.call(OP["info"])
        keys = ["version", "proto", "uptime_seconds", "connections", "connections_total",
                "max_connections", "tables", "entries", "data_bytes", "memory_bytes",
                "heap_bytes", "ops", "ops_total", "go_version", "goroutines"]
        check("info: documented keys", isinstance(info, dict) and all(k in info for k in keys),
              repr(sorted(info)))
        check("info: ops is a map", isinstance(info.get("ops"), dict))
        # Section 6.1: save answers null once the snapshot is durable (the daemon under test
        # has its default data directory).
        check("save: null once durable", c.call(OP["save"]) is None)

    # -- tables ------------------------------------------------------------------------------
    def test_tables(self, c):
        d, l = self.t("tbl_d"), self.t("tbl_l")
        check("create_dict: null", c.call(OP["create_dict"], d) is None)
        check("create_list: with content", c.call(OP["create_list"], l, [1, 2, 3]) is None)
        expect_err(c, "create_dict: table_exists", "table_exists", OP["create_dict"], d)
        expect_err(c, "create_list: table_exists (other kind)", "table_exists", OP["create_list"], d)
        check("exists: true", c.call(OP["exists"], d) is True)
        check("exists: false for a missing table", c.call(OP["exists"], self.t("nope")) is False)
        tabs = c.call(OP["tables"])
        names = [x[0] for x in tabs]
        check("tables: sorted by name", names == sorted(names, key=lambda s: s.encode()), repr(names))
        mine = [x for x in tabs if x[0] in (d, l)]
        check("tables: [name, kind, len]", same(mine, [[d, "dict", 0], [l, "list", 3]]), repr(mine))
        check("len: list", c.call(OP["len"], l) == 3)
        check("len: dict", c.call(OP["len"], d) == 0)
        expect_err(c, "len: no_such_table", "no_such_table", OP["len"], self.t("nope"))
        check("drop: null", c.call(OP["drop"], d) is None)
        check("drop: gone", c.call(OP["exists"], d) is False)
        expect_err(c, "drop: no_such_table", "no_such_table", OP["drop"], d)
        c.call(OP["drop"], l)
        # create_dict from pairs: later duplicates overwrite earlier ones, like dict(pairs).
        pairs = [["a", 1], ["b", 2], ["a", 3], [[1, 2], "arr"]]
        c.call(OP["create_dict"], d, pairs)
        pyd = dict((tuple(k) if isinstance(k, list) else k, v) for k, v in pairs)
        check("create_dict: pairs like dict(pairs)",
              same(c.call(OP["ditems"], d), [[k, v] for k, v in pyd.items()]))
        c.call(OP["drop"], d)
        # names
        expect_err(c, "name: empty is bad_request", "bad_request", OP["create_dict"], "")
        expect_err(c, "name: 256 bytes is bad_request", "bad_request", OP["create_dict"], "é" * 128)
        n255 = self.t("x" * (255 - len(self.prefix) - 1))
        check("name: 255 bytes is accepted", c.call(OP["create_list"], n255) is None)
        c.call(OP["drop"], n255)
        expect_err(c, "name: non-text is bad_request", "bad_request", OP["exists"], 5)

    # -- dict ops, side by side with a Python dict -------------------------------------------
    def test_dict(self, c):
        t = self.t("dict")
        c.call(OP["create_dict"], t, {"a": 1, "b": [1, 2], "c": None})
        py = {"a": 1, "b": [1, 2], "c": None}
        P = OP
        steps = [
            ("dget", lambda: py["a"], (P["dget"], t, "a")),
            ("dget missing", lambda: py["zz"], (P["dget"], t, "zz")),
            ("dget default", lambda: py.get("zz", 5), (P["dget"], t, "zz", 5)),
            ("dget null default", lambda: py.get("zz", None), (P["dget"], t, "zz", None)),
            ("dset new", lambda: py.__setitem__("d", {"x": 1.5}), (P["dset"], t, "d", {"x": 1.5})),
            ("dset existing keeps place", lambda: py.__setitem__("a", 10), (P["dset"], t, "a", 10)),
            ("dhas", lambda: "a" in py, (P["dhas"], t, "a")),
            ("dhas missing", lambda: "q" in py, (P["dhas"], t, "q")),
            ("dlen", lambda: len(py), (P["dlen"], t)),
            ("dkeys", lambda: list(py.keys()), (P["dkeys"], t)),
            ("dvalues", lambda: list(py.values()), (P["dvalues"], t)),
            ("ditems", lambda: [list(x) for x in py.items()], (P["ditems"], t)),
            ("ddel", lambda: py.__delitem__("b"), (P["ddel"], t, "b")),
            ("ddel missing", lambda: py.__delitem__("b"), (P["ddel"], t, "b")),
            ("dset re-add moves to end", lambda: py.__setitem__("b", 2), (P["dset"], t, "b", 2)),
            ("dkeys after re-add", lambda: list(py.keys()), (P["dkeys"], t)),
            ("dpop", lambda: py.pop("c"), (P["dpop"], t, "c")),
            ("dpop missing", lambda: py.pop("c"), (P["dpop"], t, "c")),
            ("dpop default", lambda: py.pop("c", "dflt"), (P["dpop"], t, "c", "dflt")),
            ("dpop null default", lambda: py.pop("c", None), (P["dpop"], t, "c", None)),
            ("dsetdefault existing", lambda: py.setdefault("a", 99), (P["dsetdefault"], t, "a", 99)),
            ("dsetdefault new", lambda: py.setdefault("e", 7), (P["dsetdefault"], t, "e", 7)),
            ("dsetdefault no default", lambda: py.setdefault("f"), (P["dsetdefault"], t, "f")),
            ("dupdate map", lambda: py.update({"g": 1, "a": -1}), (P["dupdate"], t, {"g": 1, "a": -1})),
            ("dupdate pairs", lambda: py.update([("h", 1), ("g", 2), ("h", 3)]),
             (P["dupdate"], t, [["h", 1], ["g", 2], ["h", 3]])),
            ("dtodict", lambda: dict(py), (P["dtodict"], t)),
            ("dpopitem", lambda: list(py.popitem()), (P["dpopitem"], t)),
            ("dpopitem again", lambda: list(py.popitem()), (P["dpopitem"], t)),
            ("ditems after popitem", lambda: [list(x) for x in py.items()], (P["ditems"], t)),
            ("dclear", lambda: py.clear(), (P["dclear"], t)),
            ("dpopitem empty", lambda: py.popitem(), (P["dpopitem"], t)),
            ("dlen empty", lambda: len(py), (P["dlen"], t)),
        ]
        for name, pyfn, req in steps:
            want = py_outcome(pyfn)
            got = db_outcome(c, *req)
            check("dict: " + name, same(want, got), "python %r, daemon %r" % (want, got))
        check("dict: final state", same(c.call(OP["ditems"], t), [list(x) for x in py.items()]))

        # dincr: d[k] = d.get(k, 0) + delta
        c.call(OP["dclear"], t)
        py = {}

        def incr(k, delta=1):
            py[k] = py.get(k, 0) + delta
            return py[k]

        for name, k, args in [("missing key counts as 0", "n", ()), ("delta", "n", (41,)),
                              ("negative", "n", (-50,)), ("float delta", "f", (0.5,)),
                              ("int + float", "n", (1.5,)), ("float + int", "f", (2,)),
                              ("big", "big", (2 ** 64 - 1,)), ("to -2^64", "neg", (-2 ** 64,))]:
            want = incr(k, *args)
            got = c.call(OP["dincr"], t, k, *args)
            check("dincr: " + name, same(want, got), "python %r, daemon %r" % (want, got))
        expect_err(c, "dincr: overflow above 2^64-1", "overflow", OP["dincr"], t, "big", 1)
        expect_err(c, "dincr: overflow below -2^64", "overflow", OP["dincr"], t, "neg", -1)
        check("dincr: overflow changed nothing", c.call(OP["dget"], t, "big") == 2 ** 64 - 1)
        c.call(OP["dset"], t, "s", "text")
        expect_err(c, "dincr: text value is type_error", "type_error", OP["dincr"], t, "s")
        expect_err(c, "dincr: text delta is type_error", "type_error", OP["dincr"], t, "n", "1")
        expect_err(c, "dincr: bool delta is type_error", "type_error", OP["dincr"], t, "n", True)
        c.call(OP["dset"], t, "bool", True)
        expect_err(c, "dincr: bool value is type_error", "type_error", OP["dincr"], t, "bool")
        # §6 (optional arguments and null): a null delta counts as left out, i.e. 1.
        check("dincr: null delta counts as left out (adds 1)", same(c.call(OP["dincr"], t, "nd", None), 1))
        c.call(OP["ddel"], t, "nd")
        check("dict: dincr final state", same(c.call(OP["dget"], t, "n"), py["n"]))

        # dcas
        check("dcas: absent, no expected -> sets", c.call(OP["dcas"], t, "cas", 1) is True)
        check("dcas: present, no expected -> no", c.call(OP["dcas"], t, "cas", 2) is False)
        check("dcas: expected matches -> sets", c.call(OP["dcas"], t, "cas", 3, 1) is True)
        check("dcas: 1.0 does not match 3 -> no", c.call(OP["dcas"], t, "cas", 4, 3.0) is False)
        check("dcas: value", same(c.call(OP["dget"], t, "cas"), 3))
        check("dcas: expected null on missing key -> no", c.call(OP["dcas"], t, "cn", 1, None) is False)
        c.call(OP["dset"], t, "cn", None)
        check("dcas: expected null matches null", c.call(OP["dcas"], t, "cn", 1, None) is True)
        check("dcas: map expected, key order irrelevant",
              c.call(OP["dset"], t, "cm", Raw(bytes.fromhex("a2616101616202"))) is None
              and c.call(OP["dcas"], t, "cm", "new", Raw(bytes.fromhex("a2616202616101"))) is True)
        c.call(OP["drop"], t)

    # -- list ops, side by side with a Python list -------------------------------------------
    def test_list(self, c):
        t = self.t("list")
        init = [5, "a", [1, 2], None, 2.5, 5, b"\x01", {"k": "v"}]
        py = list(init)
        c.call(OP["create_list"], t, init)
        P = OP

        def app(*vs):
            for v in vs:
                py.append(v)
            return len(py)

        def ext(vs):
            py.extend(vs)
            return len(py)

        steps = [
            ("lget 0", lambda: py[0], (P["lget"], t, 0)),
            ("lget -1", lambda: py[-1], (P["lget"], t, -1)),
            ("lget -len", lambda: py[-len(py)], (P["lget"], t, -8)),
            ("lget len", lambda: py[8], (P["lget"], t, 8)),
            ("lget -len-1", lambda: py[-9], (P["lget"], t, -9)),
            ("lset -2", lambda: py.__setitem__(-2, "set"), (P["lset"], t, -2, "set")),
            ("lset out of range", lambda: py.__setitem__(8, 0), (P["lset"], t, 8, 0)),
            ("ldel 1", lambda: py.__delitem__(1), (P["ldel"], t, 1)),
            ("ldel out of range", lambda: py.__delitem__(-8), (P["ldel"], t, -8)),
            ("lappend one", lambda: app("x"), (P["lappend"], t, "x")),
            ("lappend several", lambda: app(1, 2, 3), (P["lappend"], t, 1, 2, 3)),
            ("lextend", lambda: ext([7, [8]]), (P["lextend"], t, [7, [8]])),
            ("lextend empty", lambda: ext([]), (P["lextend"], t, [])),
            ("linsert middle", lambda: py.insert(2, "ins"), (P["linsert"], t, 2, "ins")),
            ("linsert negative", lambda: py.insert(-1, "neg"), (P["linsert"], t, -1, "neg")),
            ("linsert past end", lambda: py.insert(1000, "end"), (P["linsert"], t, 1000, "end")),
            ("linsert before start", lambda: py.insert(-1000, "start"), (P["linsert"], t, -1000, "start")),
            ("lpop", lambda: py.pop(), (P["lpop"], t)),
            ("lpop 0", lambda: py.pop(0), (P["lpop"], t, 0)),
            ("lpop -3", lambda: py.pop(-3), (P["lpop"], t, -3)),
            ("lpop out of range", lambda: py.pop(100), (P["lpop"], t, 100)),
            ("lcount", lambda: py.count(5), (P["lcount"], t, 5)),
            ("lcount none", lambda: py.count("zzz"), (P["lcount"], t, "zzz")),
            ("lindex", lambda: py.index(5), (P["lindex"], t, 5)),
            ("lindex start", lambda: py.index(5, 1), (P["lindex"], t, 5, 1)),
            ("lindex start stop", lambda: py.index(1, -6, -1), (P["lindex"], t, 1, -6, -1)),
            ("lindex missing", lambda: py.index("zzz"), (P["lindex"], t, "zzz")),
            ("lindex outside window", lambda: py.index(5, 0, 0), (P["lindex"], t, 5, 0, 0)),
            ("lremove", lambda: py.remove(5), (P["lremove"], t, 5)),
            ("lremove missing", lambda: py.remove("zzz"), (P["lremove"], t, "zzz")),
            ("lremove list value", lambda: py.remove([1, 2]), (P["lremove"], t, [1, 2])),
            ("lreverse", lambda: py.reverse(), (P["lreverse"], t)),
            ("ltolist", lambda: list(py), (P["ltolist"], t)),
            ("llen", lambda: len(py), (P["llen"], t)),
            ("lslice", lambda: py[1:-1:2], (P["lslice"], t, 1, -1, 2)),
            ("lslice no args", lambda: py[:], (P["lslice"], t)),
            ("lslice nulls", lambda: py[None:None:-1], (P["lslice"], t, None, None, -1)),
            ("lrange", lambda: py[2:2 + 3], (P["lrange"], t, 2, 3)),
            ("lrange past end", lambda: py[100:105], (P["lrange"], t, 100, 5)),
            ("ldelslice", lambda: py.__delitem__(slice(None, None, 3)), (P["ldelslice"], t, None, None, 3)),
            ("ltolist after ldelslice", lambda: list(py), (P["ltolist"], t)),
            ("lclear", lambda: py.clear(), (P["lclear"], t)),
            ("lpop empty", lambda: py.pop(), (P["lpop"], t)),
            ("lget empty", lambda: py[0], (P["lget"], t, 0)),
            ("llen empty", lambda: len(py), (P["llen"], t)),
        ]
        for name, pyfn, req in steps:
            want = py_outcome(pyfn)
            got = db_outcome(c, *req)
            check("list: " + name, same(want, got), "python %r, daemon %r" % (want, got))
        expect_err(c, "lslice: step 0 is bad_request", "bad_request", OP["lslice"], t, None, None, 0)
        expect_err(c, "ldelslice: step 0 is bad_request", "bad_request", OP["ldelslice"], t, 0, 1, 0)
        expect_err(c, "lrange: negative start is bad_request", "bad_request", OP["lrange"], t, -1, 2)
        expect_err(c, "lrange: negative count is bad_request", "bad_request", OP["lrange"], t, 0, -2)

        # Every slice over a small range, pipelined: lslice and ldelslice vs Python.
        base = list(range(7))
        c.call(OP["lclear"], t)
        c.call(OP["lextend"], t, base)
        rng = [None] + list(range(-9, 10))
        steps_ = [None, -3, -2, -1, 1, 2, 3]
        combos = [(a, b, s) for a in rng for b in rng for s in steps_]
        res = c.pipeline([(OP["lslice"], t, a, b, s) for a, b, s in combos])
        bad = [(k, r) for k, r in zip(combos, res) if not same(r, base[slice(*k)])]
        check("lslice: %d slices match Python" % len(combos), not bad, repr(bad[:3]))
        bad = []
        for k in combos[::7] + [(a, b, 2) for a in rng[::3] for b in rng[::3]]:
            ref = list(base)
            del ref[slice(*k)]
            res = c.pipeline([(OP["ldelslice"], t, *k), (OP["ltolist"], t), (OP["lclear"], t),
                              (OP["lextend"], t, base)])
            if not same(res[1], ref):
                bad.append((k, res[1], ref))
        check("ldelslice: slices match Python", not bad, repr(bad[:3]))

        # lsort, stable and numeric across ints/floats/bools, like Python.
        for name, vals, rev in [
            ("numbers", [3, True, 1.0, 1, False, 0.5, -2, 2 ** 64 - 1, -2 ** 64, 2.0], False),
            ("numbers reverse (stable)", [3, True, 1.0, 1, False, 0.5, 1, 2 ** 53 + 1, 2.0 ** 53], True),
            ("exact int/float comparison", [2 ** 53 + 1, 2.0 ** 53, 2 ** 53], False),
            ("text by code point", ["b", "a", "é", "Z", "", "ab", "\U0001F600", "\uffff"], False),
            ("bytes", [b"b", b"a", b"", b"\xff", b"ab"], False),
            ("arrays", [[1, 2], [1], [], [0, 5], [1, 1.5]], False),
            ("arrays decided early", [[2, 3], [1, "a"]], False),
            ("single null", [None], False),
            ("single map", [{"a": 1}], False),
            ("empty", [], False),
        ]:
            c.call(OP["lclear"], t)
            c.call(OP["lextend"], t, vals)
            ref = list(vals)
            want = py_outcome(lambda: ref.sort(reverse=rev))
            got = db_outcome(c, OP["lsort"], t, rev) if rev else db_outcome(c, OP["lsort"], t)
            after = c.call(OP["ltolist"], t)
            check("lsort: " + name, same(want, got) and same(after, ref),
                  "python %r %r, daemon %r %r" % (want, ref, got, after))
        for name, vals in [("text with number", [1, "a"]), ("null with null", [None, None]),
                           ("maps", [{}, {}]), ("text with bytes", ["a", b"a"]),
                           ("arrays with incomparable elements", [[1, "a"], [1, 2]])]:
            c.call(OP["lclear"], t)
            c.call(OP["lextend"], t, vals)
            ref = list(vals)
            want = py_outcome(lambda: ref.sort())
            got = db_outcome(c, OP["lsort"], t)
            check("lsort: %s is type_error and unchanged" % name,
                  want == ("err", "type_error") == got and same(c.call(OP["ltolist"], t), vals),
                  "python %r, daemon %r" % (want, got))
        c.call(OP["lclear"], t)
        c.call(OP["lextend"], t, [1, Tag(1, 5)])
        got = db_outcome(c, OP["lsort"], t)
        check("lsort: tagged value vs number is type_error", got == ("err", "type_error"),
              "daemon %r, list now %r" % (got, c.call(OP["ltolist"], t)))
        c.call(OP["drop"], t)

    # -- errors ------------------------------------------------------------------------------
    def test_errors(self, c):
        d, l = self.t("err_d"), self.t("err_l")
        c.call(OP["create_dict"], d)
        c.call(OP["create_list"], l, [1])
        expect_err(c, "wrong_kind: dict op on a list", "wrong_kind", OP["dget"], l, "k")
        expect_err(c, "wrong_kind: list op on a dict", "wrong_kind", OP["lappend"], d, 1)
        expect_err(c, "no_such_table: dict op", "no_such_table", OP["dset"], self.t("nope"), 1, 2)
        expect_err(c, "no_such_table: list op", "no_such_table", OP["ltolist"], self.t("nope"))
        expect_err(c, "unknown_op: op 99", "unknown_op", 99)
        expect_err(c, "unknown_op: op 5 (gap in numbering)", "unknown_op", 5)
        ok = True
        detail = ""
        for op in (65536, 2 ** 64 - 1):
            try:
                c.call(op)
                ok = False
            except CyberDBError as e:
                if e.name != "unknown_op":
                    ok, detail = False, "op %d: %s: %s" % (op, e.name, e.message)
        check("unknown_op: op 65536 and 2^64-1 are unknown_op", ok, detail)
        expect_err(c, "bad_request: too few arguments", "bad_request", OP["dset"], d, "k")
        expect_err(c, "bad_request: too many arguments", "bad_request", OP["dhas"], d, "k", "x")
        expect_err(c, "bad_request: float index", "bad_request", OP["lget"], l, 0.0)
        expect_err(c, "bad_request: index outside int64", "bad_request", OP["lget"], l, 2 ** 63)
        expect_err(c, "bad_request: lextend of a non-array", "bad_request", OP["lextend"], l, "ab")
        expect_err(c, "bad_request: dupdate with a bad pair", "bad_request", OP["dupdate"], d, [["a", 1], ["b"]])
        check("bad_request: dupdate with a bad pair changed nothing", c.call(OP["dlen"], d) == 0)
        expect_err(c, "bad_request: op is text", "bad_request", "dget")
        expect_err(c, "key_not_found", "key_not_found", OP["dget"], d, "missing")
        expect_err(c, "index_out_of_range", "index_out_of_range", OP["lget"], l, 1)
        expect_err(c, "value_not_found", "value_not_found", OP["lremove"], l, 1.0)
        c.call(OP["dset"], d, "s", "x")
        expect_err(c, "type_error", "type_error", OP["dincr"], d, "s")
        c.call(OP["dset"], d, "m", 2 ** 64 - 1)
        expect_err(c, "overflow", "overflow", OP["dincr"], d, "m", 2)
        expect_err(c, "table_exists", "table_exists", OP["create_list"], l)
        # error reply shape: [id, code, text]
        i = c.send(OP["dget"], d, "missing")
        rid, code, msg = c.recv_raw()
        check("error reply: [id, code, text]", rid == i and code == 6 and isinstance(msg, str))
        c.call(OP["drop"], d)
        c.call(OP["drop"], l)

    # -- batch -------------------------------------------------------------------------------
    def test_batch(self, c):
        d, l, n = self.t("b_d"), self.t("b_l"), self.t("b_new")
        c.call(OP["create_dict"], d, [["x", 1], ["y", 2], ["z", 3]])
        c.call(OP["create_list"], l, [1, 2, 3])
        res = c.batch((OP["dset"], d, "w", 4), (OP["lappend"], l, 4), (OP["dget"], d, "w"),
                      (OP["lpop"], l, 0))
        check("batch: results in order", same(res, [None, 4, 4, 1]), repr(res))
        check("batch: empty batch is []", same(c.call(OP["batch"], []), []))
        before_d = c.call(OP["ditems"], d)
        before_l = c.call(OP["ltolist"], l)
        try:
            c.batch((OP["ddel"], d, "x"), (OP["dset"], d, "x", 9), (OP["lappend"], l, 9),
                    (OP["create_dict"], n), (OP["dclear"], d), (OP["lget"], l, 99))
            check("batch: failing batch fails", False)
        except CyberDBError as e:
            check("batch: failing batch reports the failing op's error", e.name == "index_out_of_range", e.message)
            check("batch: message prefixed 'batch op 5 (lget): '", e.message.startswith("batch op 5 (lget): "), e.message)
        check("batch: dict unchanged, order included", same(c.call(OP["ditems"], d), before_d))
        check("batch: list unchanged", same(c.call(OP["ltolist"], l), before_l))
        check("batch: created table undone", c.call(OP["exists"], n) is False)
        try:
            c.batch((OP["drop"], l), (OP["dget"], d, "nope"))
        except CyberDBError as e:
            check("batch: drop undone", e.name == "key_not_found" and c.call(OP["exists"], l) is True)
        for name, op in [("hello", (OP["hello"], 1)), ("ping", (OP["ping"],)), ("info", (OP["info"],)),
                         ("save", (OP["save"],)), ("batch", (OP["batch"], []))]:
            expect_err(c, "batch: %s inside a batch is bad_request" % name, "bad_request",
                       OP["batch"], [[OP["dset"], d, "q", 1], list(op)])
        check("batch: rejected batch changed nothing", c.call(OP["dhas"], d, "q") is False)
        c.call(OP["drop"], d)
        c.call(OP["drop"], l)

    # -- pipelining --------------------------------------------------------------------------
    def test_pipelining(self, c):
        t = self.t("pipe")
        c.call(OP["create_list"], t)
        ids = [c.send(OP["lappend"], t, i) for i in range(100)]
        replies = [c.recv_raw() for _ in range(100)]
        check("pipelining: 100 replies with matching ids in order",
              [r[0] for r in replies] == ids, repr([r[0] for r in replies][:5]))
        check("pipelining: 100 results in order (new lengths 1..100)",
              [r[2] for r in replies] == list(range(1, 101)))
        check("pipelining: list holds 0..99", c.call(OP["ltolist"], t) == list(range(100)))
        # Client-chosen ids, including 2^64-1, are echoed; mixed successes and failures.
        reqs = [(2 ** 64 - 1, OP["ping"], "max"), (7, OP["lget"], t, 1000), (7, OP["ping"], "dup id")]
        for r in reqs:
            c.send(*r[1:], id=r[0])
        out = [c.recv_raw() for _ in reqs]
        check("pipelining: ids echoed (2^64-1, repeated ids)",
              [o[0] for o in out] == [2 ** 64 - 1, 7, 7] and out[1][1] == 7 and out[2][2] == "dup id", repr(out))
        c.call(OP["drop"], t)

    # -- canonical equality ------------------------------------------------------------------
    def test_canonical(self, c):
        t = self.t("canon")
        c.call(OP["create_dict"], t)
        c.pipeline([(OP["dset"], t, 1, "int"), (OP["dset"], t, 1.0, "float"), (OP["dset"], t, True, "bool"),
                    (OP["dset"], t, "a", "text"), (OP["dset"], t, b"a", "bytes"),
                    (OP["dset"], t, 0.0, "+0"), (OP["dset"], t, -0.0, "-0")])
        check("canonical: 1, 1.0, true, 'a', h'61', 0.0, -0.0 are 7 keys", c.call(OP["dlen"], t) == 7)
        check("canonical: dget 1 vs 1.0", c.call(OP["dget"], t, 1) == "int" and c.call(OP["dget"], t, 1.0) == "float")
        items = c.call(OP["ditems"], t)
        check("canonical: ditems keeps types", same([k for k, _ in items], [1, 1.0, True, "a", b"a", 0.0, -0.0]), repr(items))
        # Same key sent with different encodings: 1.5 as float16/32/64, non-shortest ints,
        # indefinite-length text, maps with different key order.
        c.call(OP["dset"], t, 1.5, "f")
        for enc in ("f93e00", "fa3fc00000", "fb3ff8000000000000"):
            check("canonical: 1.5 encoded as %s is the same key" % enc,
                  c.call(OP["dget"], t, Raw(bytes.fromhex(enc))) == "f")
        check("canonical: non-shortest int 1 (1801) is key 1", c.call(OP["dget"], t, Raw(bytes.fromhex("1801"))) == "int")
        check("canonical: indefinite text is the same key",
              c.call(OP["dget"], t, Raw(bytes.fromhex("7f6161ff"))) == "text")
        c.call(OP["dset"], t, Raw(bytes.fromhex("a2616101616202")), "map")
        check("canonical: map key order does not matter",
              c.call(OP["dget"], t, Raw(bytes.fromhex("a2616202616101"))) == "map")
        check("canonical: dlen", c.call(OP["dlen"], t) == 9)
        # Replies are canonical: values stored as float64 / indefinite arrays come back shortest.
        c.call(OP["dset"], t, "raw", Raw(bytes.fromhex("9f01fb3ff8000000000000ff")))
        c.send_frame(encode([43, OP["dget"], t, "raw"]))
        body = c.recv_frame()
        check("canonical: stored [_ 1, 1.5 as f64] is read back as 82 01 f93e00",
              body == bytes.fromhex("83182b00") + bytes.fromhex("8201f93e00"), body.hex())
        # Equality rule for list ops
        l = self.t("canon_l")
        c.call(OP["create_list"], l, [1, 1.0, True, float("nan"), -0.0])
        check("canonical: lcount 1 / 1.0 / true each 1",
              [c.call(OP["lcount"], l, v) for v in (1, 1.0, True)] == [1, 1, 1])
        check("canonical: NaN equals NaN", c.call(OP["lindex"], l, float("nan")) == 3)
        check("canonical: 0.0 is not -0.0", c.call(OP["lcount"], l, 0.0) == 0)
        c.call(OP["lremove"], l, 1.0)
        check("canonical: lremove 1.0 leaves 1 and true", same(c.call(OP["lslice"], l, 0, 2), [1, True]))
        c.call(OP["drop"], t)
        c.call(OP["drop"], l)

    # -- tagged values -----------------------------------------------------------------------
    def test_values(self, c):
        t = self.t("vals")
        c.call(OP["create_dict"], t)
        vals = [None, True, False, 0, 2 ** 64 - 1, -2 ** 64, 1.5, float("inf"), "é", b"\x00\xff",
                [1, [2, [3]]], {"a": {"b": [None]}}, Tag(32, "http://x"), Tag(99, [1, 2])]
        for i, v in enumerate(vals):
            c.call(OP["dset"], t, i, v)
        got = c.call(OP["dvalues"], t)
        check("values: round-trip of every CBOR kind", same(got, vals), repr(got))
        c.call(OP["dset"], t, "t1", Tag(1, 1.5))
        got = c.call(OP["dget"], t, "t1")
        check("values: tag 1 (epoch time) round-trips", same(got, Tag(1, 1.5)), "stored 1(1.5), read back %r" % (got,))
        c.call(OP["dset"], t, "t0", Tag(0, "2020-01-01T00:00:00Z"))
        got = c.call(OP["dget"], t, "t0")
        check("values: tag 0 (date text) round-trips", same(got, Tag(0, "2020-01-01T00:00:00Z")),
              "read back %r" % (got,))
        i = c.send(OP["ping"], Tag(1, "not a number"))
        rid, code, val = c.recv_raw()
        # §2 validity: tag 1 must hold a number -> bad_request, with the request's id (§3).
        check("values: tag 1 around text is bad_request with its id",
              rid == i and code == ERR["bad_request"], repr((rid, code, val)))
        c.call(OP["drop"], t)

    # -- dscan / lrange paging ---------------------------------------------------------------
    def test_paging(self, c):
        t = self.t("scan")
        py = {}
        for i in range(1000):
            py["k%04d" % ((i * 7919) % 1000)] = i
        c.call(OP["create_dict"], t, [[k, v] for k, v in py.items()])
        check("dscan: 1000 entries stored", c.call(OP["dlen"], t) == 1000)
        cursor, seen, calls = 0, [], 0
        while True:
            cursor, page = c.call(OP["dscan"], t, cursor, 37)
            calls += 1
            if len(page) > 37:
                break
            seen.extend(page)
            if cursor == 0 or calls > 100:
                break
        check("dscan: pages of <= 37 return all 1000 in insertion order exactly once",
              same(seen, [[k, v] for k, v in py.items()]), "%d entries in %d calls" % (len(seen), calls))
        # Changes during a scan: entries present throughout are returned exactly once.
        cursor, page = c.call(OP["dscan"], t, 0, 100)
        first = page
        c.call(OP["ddel"], t, page[0][0])       # already returned
        c.call(OP["ddel"], t, "k0999" if "k0999" not in [k for k, _ in page] else "k0998")
        for j in range(50):
            c.call(OP["dset"], t, "new%d" % j, j)
        seen = list(first)
        while cursor != 0:
            cursor, page = c.call(OP["dscan"], t, cursor, 100)
            seen.extend(page)
        keys = [k for k, _ in seen]
        stable = [k for k in py if k not in (first[0][0], "k0999", "k0998")]
        check("dscan: concurrent changes, stable entries exactly once",
              all(keys.count(k) == 1 for k in stable), "%d keys seen" % len(keys))
        check("dscan: empty dict -> [0, []]",
              c.call(OP["dclear"], t) is None and same(c.call(OP["dscan"], t, 0, 10), [0, []]))
        c.call(OP["drop"], t)
        # lrange paging
        l = self.t("range")
        c.call(OP["create_list"], l, list(range(1000)))
        out, start = [], 0
        while True:
            page = c.call(OP["lrange"], l, start, 64)
            out.extend(page)
            start += 64
            if len(page) < 64:
                break
        check("lrange: paging returns the whole list", out == list(range(1000)))
        c.call(OP["drop"], l)

    # -- framing -----------------------------------------------------------------------------
    def test_framing(self):
        c = self.conn()
        c.send_frame(b"")
        r = decode(c.recv_frame())
        check("framing: empty frame -> [0, 1, text]", r[0] == 0 and r[1] == 1 and isinstance(r[2], str), repr(r))
        check("framing: usable after empty frame", c.call(OP["ping"], 1) == 1)
        c.send_frame(b"\xff\xfe not cbor")
        r = decode(c.recv_frame())
        check("framing: non-CBOR body -> [0, 1, text]", r[0] == 0 and r[1] == 1, repr(r))
        check("framing: usable after non-CBOR body", c.call(OP["ping"], 2) == 2)
        # §3: the id is read when the body starts with an array head and an unsigned integer.
        for name, body in [("trailing bytes", encode([5, OP["ping"]]) + b"\x00"),
                           ("truncated item", encode([5, OP["ping"], "abc"])[:-1])]:
            c.send_frame(body)
            r = decode(c.recv_frame())
            check("framing: %s -> bad_request with its id" % name, r[0] == 5 and r[1] == 1, repr(r))
        for name, body in [("not an array", encode({"id": 5})), ("empty array", encode([])),
                           ("negative id", encode([-1, OP["ping"]])), ("text id", encode(["5", OP["ping"]]))]:
            c.send_frame(body)
            r = decode(c.recv_frame())
            check("framing: %s -> bad_request with id 0" % name, r[0] == 0 and r[1] == 1, repr(r))
        check("framing: usable after bad bodies", c.call(OP["ping"], 3) == 3)
        # Pipelined: a bad frame between good ones keeps its place in the order.
        c.send(OP["ping"], "a")
        c.send_frame(b"\xff")
        c.send(OP["ping"], "b")
        r1, r2, r3 = decode(c.recv_frame()), decode(c.recv_frame()), decode(c.recv_frame())
        c._pending.clear()
        check("framing: id-0 reply keeps its place in the order",
              r1[2] == "a" and r2[0] == 0 and r2[1] == 1 and r3[2] == "b", repr((r1, r2, r3)))
        # Indefinite lengths are accepted in requests.
        c.send_frame(bytes.fromhex("9f1863029f0102ffff"))
        r = decode(c.recv_frame())
        check("framing: indefinite-length request accepted", r == [99, 0, [1, 2]], repr(r))
        # Decoding limits.
        c.send_frame(encode([60, OP["ping"], Raw(b"\x81" * 63 + b"\x01")]))   # 1 + 63 = 64 levels
        r = decode(c.recv_frame())
        check("limits: nesting of 64 levels accepted", r[0] == 60 and r[1] == 0, repr(r)[:80])
        c.send_frame(encode([61, OP["ping"], Raw(b"\x81" * 64 + b"\x01")]))   # 1 + 64 = 65 levels
        r = decode(c.recv_frame())
        check("limits: nesting of 65 levels is too_large", r[1] == 10, repr(r)[:120])
        check("limits: too_large for nesting echoes the request id", r[0] == 61, repr(r)[:120])
        check("limits: usable after too_large nesting", c.call(OP["ping"], 4) == 4)
        c.send_frame(encode([62, OP["ping"], Raw(b"\xa2\x01\x01\x01\x02")]))
        r = decode(c.recv_frame())
        check("framing: map with a repeated key is bad_request", r[1] == 1, repr(r))
        c.send_frame(encode([63, OP["ping"], Raw(b"\x62a\xff")]))
        body = c.recv_frame()
        try:
            r = decode(body)
            ok = r[1] == 1
        except UnicodeDecodeError:
            ok = False
        check("framing: invalid UTF-8 text is bad_request", ok, "reply body " + body.hex())
        check("framing: usable after limit errors", c.call(OP["ping"], 5) == 5)
        c.close()

        # Frame over the maximum: error frame [0, 10, ...], then the connection is closed.
        c = self.conn()
        max_frame = c.server_info["max_frame"]
        c.sock.sendall(struct.pack(">I", max_frame + 1))
        r = decode(c.recv_frame())
        check("framing: frame over max_frame -> [0, 10, text]", r[0] == 0 and r[1] == 10, repr(r))
        try:
            c.recv_frame()
            closed = False
        except (ConnectionClosed, OSError):
            closed = True
        check("framing: connection closed after too_large frame", closed)
        c.close()
        c = self.conn()
        check("framing: daemon still serves new connections", c.call(OP["ping"]) == "PONG")
        c.close()

    # -- expiry (PROTOCOL.md 6.5) --------------------------------------------------------------
    def test_expiry(self, c):
        t = self.t("exp")
        far = 4102444800000  # 2100-01-01, in unix milliseconds
        c.call(OP["create_dict"], t, None, {"ttl": 600000})
        c.call(OP["dset"], t, "k", "v")
        left = c.call(OP["dttl"], t, "k")
        check("expiry: a plain set gets the table's default TTL", 599000 < left <= 600000, repr(left))
        c.call(OP["dset"], t, "k", "v", {"at": far})
        check("expiry: dttl absolute is the deadline", c.call(OP["dttl"], t, "k", True) == far)
        c.call(OP["dset"], t, "k", "w", {"keepttl": True})
        check("expiry: keepttl keeps it", c.call(OP["dttl"], t, "k", True) == far)
        c.call(OP["dset"], t, "p", 1)
        c.call(OP["dset"], t, "p", 2, {"ttl": 5000})
        c.call(OP["dpersist"], t, "p")
        check("expiry: dpersist leaves no deadline: null", c.call(OP["dttl"], t, "p") is None)
        expect_err(c, "expiry: dttl of a missing key is key_not_found, not null", "key_not_found",
                   OP["dttl"], t, "missing")
        check("expiry: dexpire of a missing key is false",
              c.call(OP["dexpire"], t, "missing", {"ttl": 1000}) is False)
        check("expiry: dgetex returns the value", c.call(OP["dgetex"], t, "k", {"ttl": 90000}) == "w")
        left = c.call(OP["dttl"], t, "k")
        check("expiry: dgetex moved the deadline", 89000 < left <= 90000, repr(left))
        check("expiry: set nx of a present key is false",
              c.call(OP["dset"], t, "k", 1, {"nx": True, "ttl": 1000}) is False)
        check("expiry: set nx of an absent key is true (a lease)",
              c.call(OP["dset"], t, "lock", "me", {"nx": True, "ttl": 30000}) is True)
        check("expiry: ddelifeq of another holder's value is false",
              c.call(OP["ddelifeq"], t, "lock", "you") is False)
        check("expiry: ddelifeq of the value held is true", c.call(OP["ddelifeq"], t, "lock", "me") is True)
        # An entry whose deadline passed is gone for every op.
        c.call(OP["dset"], t, "gone", 1, {"ttl": 30})
        time.sleep(0.05)
        check("expiry: dhas of an expired entry is false", c.call(OP["dhas"], t, "gone") is False)
        check("expiry: dget with default of an expired entry", c.call(OP["dget"], t, "gone", 0) == 0)
        keys = c.call(OP["dkeys"], t)
        check("expiry: dkeys leaves it out", "gone" not in keys, repr(keys))
        check("expiry: dlen does not count it", c.call(OP["dlen"], t) == len(keys), repr(keys))
        check("expiry: dcas does not compare it", c.call(OP["dcas"], t, "gone", 2, 1) is False)
        check("expiry: dincr starts over, with the default TTL", c.call(OP["dincr"], t, "gone") == 1)
        # Whole tables.
        lt = self.t("exp_list")
        c.call(OP["create_list"], lt, [1, 2])
        check("expiry: a table without deadline: ttl null", c.call(OP["ttl"], lt) is None)
        c.call(OP["expire"], lt, {"at": far})
        check("expiry: ttl absolute of a table", c.call(OP["ttl"], lt, True) == far)
        c.call(OP["expire"], lt, {"ttl": 20})
        time.sleep(0.04)
        check("expiry: a table past its deadline does not exist", c.call(OP["exists"], lt) is False)
        expect_err(c, "expiry: llen of an expired table", "no_such_table", OP["llen"], lt)
        # Cache tables.
        ct = self.t("exp_cache")
        c.call(OP["create_dict"], ct, None, {"max_len": 3})
        for i in range(10):
            c.call(OP["dset"], ct, i, i)
        check("expiry: a max_len cache keeps max_len entries", c.call(OP["dlen"], ct) == 3)
        check("expiry: the last write stays", c.call(OP["dhas"], ct, 9) is True)
        expect_err(c, "expiry: a ttl of 0 for dset is bad_request", "bad_request",
                   OP["dset"], t, "k", 1, {"ttl": 0})
        expect_err(c, "expiry: journal-only ops are refused", "bad_request", 79, t, "expired", "k")
        info = c.call(OP["info"])
        check("expiry: info counts expired and evicted",
              info.get("expired", 0) >= 1 and info.get("evicted", 0) >= 7, repr({k: info.get(k) for k in ("expired", "evicted")}))
        for name in (t, ct):
            c.call(OP["drop"], name)
    # -- deques, blocking pops, the push extension, guards (issue 15) -----------------------
    def test_deque(self, c):
        t = self.t("deque")
        c.call(OP["create_list"], t, [1, 2, 3])
        d = collections.deque([1, 2, 3])
        steps = [("lappendleft", (0, -1)), ("lpopleft", ()), ("lextendleft", ([7, 8],)),
                 ("lrotate", (2,)), ("lrotate", (-5,)), ("lrotate", ()), ("lpop", ()), ("lpopleft", ())]
        for name, args in steps:
            got = c.call(OP[name], t, *args)
            if name == "lappendleft":
                for v in args:
                    d.appendleft(v)
                want = len(d)
            elif name == "lextendleft":
                d.extendleft(args[0])
                want = len(d)
            elif name == "lpopleft":
                want = d.popleft()
            elif name == "lpop":
                want = d.pop()
            else:
                d.rotate(*args)
                want = None
            check("deque: %s%r returns %r as collections.deque" % (name, args, want), got == want, repr(got))
            check("deque: after %s%r the list is the deque" % (name, args),
                  c.call(OP["ltolist"], t) == list(d), repr(c.call(OP["ltolist"], t)))
        e = self.t("deque_e")
        c.call(OP["create_list"], e)
        expect_err(c, "deque: popleft of an empty list is IndexError", "index_out_of_range", OP["lpopleft"], e)
        want = d.popleft()
        check("lmove: left of t to right of e", c.call(OP["lmove"], t, e, "left", "right") == want)
        got = c.bpop([e, t], "left", 0)
        check("lbpop: at once, from the first list (in the order given) that has a value", got == [e, want], repr(got))
        check("lbpop: time-out 0 on empty lists is null at once", c.bpop([e], "right", 0) is None)
        c.call(OP["drop"], t)
        c.call(OP["drop"], e)

    def test_push(self):
        t = self.t("push")
        p = Client().connect(self.path)
        info = p.hello(client="test_interop.py", push=True)
        check("push: HELLO with push: true answers push: true", p.push and "push" in info.get("features", []),
              repr(info))
        other = self.conn()
        other.call(OP["create_list"], t)
        bid = p.send(OP["lbpop"], [t], "left", None)
        pid = p.send(OP["ping"], "after")
        check("push: the reply to a later ping comes while the pop waits", p.recv_id(pid)[2] == "after")
        other.call(OP["lappend"], t, "v1")
        check("push: the parked pop's reply, by id", p.recv_id(bid) == (bid, 0, [t, "v1"]))
        bid = p.send(OP["lbpop"], [t], "right", 60000)
        check("push: cancel of a waiting pop is true", p.cancel(bid) is True)
        check("push: cancel of a pop no longer waiting is false", p.cancel(bid) is False)
        p.send_frame(encode([0, OP["ping"]]))
        r = p._read_reply()
        check("push: request id 0 is bad_request", r[0] == 0 and r[1] == ERR["bad_request"], repr(r))
        check("push: blocking pop time-out is null", p.bpop([t], "left", 30) is None)
        np = self.conn()
        check("push: a connection that did not ask has no push", not np.push)
        other.call(OP["drop"], t)
        for x in (p, np, other):
            x.close()

    # -- observability and administration (issue 17) ----------------------------------------
    def test_observability(self):
        t = self.t("obs")
        p = Client().connect(self.path)
        p.hello(client="test_interop.py monitor", push=True)
        other = self.conn()
        sub = p.monitor()
        other.call(OP["create_dict"], t)
        other.call(OP["dset"], t, "k", "a value")
        seen = [p.next_push(), p.next_push()]
        check("monitor: a push per request of other connections, with op, table and key",
              [(m["push"], m["sub"], m["op"], m["table"], m.get("key")) for m in seen] ==
              [("monitor", sub, "create_dict", t, None), ("monitor", sub, "dset", t, "k")], repr(seen))
        check("monitor: never the value", "a value" not in repr(seen))
        mid = p.send(OP["monitor"], False)
        check("monitor false: true", p.recv_id(mid)[2] is True)
        check("slowlog len is a count", isinstance(other.call(OP["slowlog"], "len"), int))
        lat = other.call(OP["latency"])
        check("latency: dset's percentiles", lat["dset"]["count"] >= 1 and lat["dset"]["p99_us"] >= lat["dset"]["p50_us"], repr(lat))
        cl = other.call(OP["clients"])
        check("clients: our pid on both connections",
              sum(1 for x in cl if x.get("pid") == os.getpid()) >= 2, repr(cl))
        got = other.call(OP["config_get"], "slowlog-max-len")
        check("config_get: [name, value, live]", len(got) == 1 and got[0][0] == "slowlog-max-len" and got[0][2] is True, repr(got))
        expect_err(other, "config_set of a setting that needs a restart", "bad_request", OP["config_set"], "socket", "/tmp/x")
        other.call(OP["drop"], t)
        p.close()
        other.close()

    def test_events(self):
        t = self.t("ev")
        sub = Client().connect(self.path)
        sub.hello(client="test_interop.py", push=True)
        pub = self.conn()
        expect_err(pub, "events: subscribe without push is bad_request", "bad_request", OP["subscribe"], "x")
        ch = self.t("chan")
        sid = sub.subscribe(ch)
        pid = sub.psubscribe(self.t("ch*"))
        n = pub.publish(ch, {"n": 1})
        check("pubsub: publish counts the channel and the pattern subscription", n == 2, repr(n))
        m1, m2 = sub.next_push("message"), sub.next_push("message")
        check("pubsub: the channel's message", m1 == {"push": "message", "sub": sid, "channel": ch, "data": {"n": 1}}, repr(m1))
        check("pubsub: the pattern's message", m2.get("sub") == pid and m2.get("pattern") == self.t("ch*"), repr(m2))
        check("pubsub: unsubscribe", sub.unsubscribe(sid) is True and sub.unsubscribe(sid) is False)
        check("pubsub: after unsubscribe the pattern only", pub.publish(ch, "x") == 1)
        sub.next_push("message")

        pub.call(OP["create_dict"], t)
        w = sub.watch(t, values=True)
        check("watch: the reply", w.get("exists") is True and isinstance(w.get("seq"), int) and "run" in w, repr(w))
        kw = sub.watch(t, key="k")
        pub.call(OP["dset"], t, "a", 1)
        pub.call(OP["dincr"], t, "k", 2)
        pub.batch((OP["dset"], t, "k", "v"), (OP["ddel"], t, "a"))
        evs = [sub.next_push("event") for _ in range(5)]
        mine = [(e["op"], e.get("key"), e.get("value"), e["seq"] - w["seq"]) for e in evs if e["sub"] == w["sub"]]
        check("watch: events in apply order with values and seq (a batch shares one)",
              mine == [("dset", "a", 1, 1), ("dincr", "k", 2, 2), ("dset", "k", "v", 3), ("ddel", "a", None, 3)], repr(mine))
        keyed = [(e["op"], e.get("key")) for e in evs if e["sub"] == kw["sub"]]
        check("watch: a key watch sees its key only", keyed == [("dincr", "k")], repr(keyed))

        tr = sub.call(OP["tracking"], True)["sub"]
        check("tracking: a read", sub.call(OP["dget"], t, "k") == "v")
        pub.call(OP["dset"], t, "k", "w")
        inv = sub.next_push("invalidate")
        check("tracking: the write of a key read pushes its invalidation",
              inv == {"push": "invalidate", "sub": tr, "table": t, "keys": ["k"]}, repr(inv))
        pub.call(OP["drop"], t)
        sub.close()
        pub.close()

    def test_guards(self, c):
        t = self.t("acct")
        c.call(OP["create_dict"], t, {"alice": 30, "bob": 5})
        res = c.batch((OP["guard"], t, "eq", "alice", 30), (OP["dset"], t, "alice", 20), (OP["dincr"], t, "bob", 10))
        check("guards: a batch whose guard holds applies", res == [None, None, 15], repr(res))
        try:
            c.batch((OP["dincr"], t, "bob", 1), (OP["guard"], t, "eq", "alice", 30))
            check("guards: a failed guard fails the batch", False)
        except CyberDBError as e:
            check("guards: guard_failed names the guard (batch op 1)",
                  e.name == "guard_failed" and e.message.startswith("batch op 1 (guard): "), e.message)
        check("guards: nothing applied", c.call(OP["dget"], t, "bob") == 15)
        c.call(OP["drop"], t)

    def run(self):
        self.test_handshake()
        self.test_push()
        self.test_observability()
        c = self.conn()
        self.test_server_ops(c)
        self.test_tables(c)
        self.test_dict(c)
        self.test_list(c)
        self.test_errors(c)
        self.test_batch(c)
        self.test_pipelining(c)
        self.test_canonical(c)
        self.test_values(c)
        self.test_paging(c)
        self.test_expiry(c)
        self.test_deque(c)
        self.test_guards(c)
        self.test_events()
        c.close()
        self.test_framing()


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CYBERDB_SOCKET")
    if not path:
        print("usage: test_interop.py SOCKET (or set CYBERDB_SOCKET)", file=sys.stderr)
        return 2
    try:
        Suite(path).run()
    except Exception as e:  # a crash is a failure, not a traceback-only exit
        import traceback
        traceback.print_exc()
        FAILED.append("crashed: %r" % (e,))
    if KNOWN_SEEN:
        print("%d known daemon bug(s) reproduced (reported, not failed):" % len(KNOWN_SEEN))
        for n in KNOWN_SEEN:
            print("  - " + n)
    if KNOWN_FIXED:
        print("known daemon bug(s) now passing, remove from KNOWN_DAEMON_BUGS: %s" % KNOWN_FIXED)
    if FAILED:
        print("failed checks:")
        for n in FAILED:
            print("  - " + n)
    print("%d passed, %d failed" % (PASSED, len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
