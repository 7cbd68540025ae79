"""A small cyberdb client written only from PROTOCOL.md (protocol version 1).

Self-contained: it carries its own minimal CBOR (RFC 8949) encoder/decoder so it runs on any
python3 >= 3.7 without third-party packages.

    from cyberdb_client import Client, CyberDBError
    c = Client()
    c.connect("/run/cyberdb/cyberdb.sock")
    c.hello(client="myapp")
    c.call(OP["create_dict"], "t")
    c.call(OP["dset"], "t", "k", [1, 2])
    c.call(OP["dget"], "t", "k")            # -> [1, 2]

Pipelining: ids = [c.send(op, *args) for ...]; then c.recv() once per request, in order.
"""

import socket
import struct

__all__ = [
    "Client", "CyberDBError", "ConnectionClosed", "OP", "ERR", "ERR_NAME",
    "Tag", "Simple", "Float", "Map", "Raw", "Undefined", "encode", "encode_canonical", "decode",
    "decode_prefix",
]

# --------------------------------------------------------------------------------------------
# Protocol constants (PROTOCOL.md sections 6 and 7)

OP = {
    # 6.1 connection and server
    "hello": 1, "ping": 2, "info": 3, "save": 4,
    # 6.2 tables
    "tables": 10, "create_dict": 11, "create_list": 12, "exists": 13, "drop": 14, "len": 15,
    "batch": 16,
    # 6.3 dicts
    "dget": 20, "dset": 21, "ddel": 22, "dhas": 23, "dlen": 24, "dkeys": 25, "dvalues": 26,
    "ditems": 27, "dpop": 28, "dpopitem": 29, "dsetdefault": 30, "dupdate": 31, "dclear": 32,
    "dtodict": 33, "dincr": 34, "dcas": 35, "dscan": 36,
    # 6.4 lists
    "lget": 40, "lset": 41, "ldel": 42, "lslice": 43, "ldelslice": 44, "lappend": 45,
    "lextend": 46, "linsert": 47, "lpop": 48, "lremove": 49, "lcount": 50, "lindex": 51,
    "lreverse": 52, "lsort": 53, "lclear": 54, "ltolist": 55, "llen": 56, "lrange": 57,
    "lsetslice": 58, "lcontains": 59,  # issue 11; older daemons answer unknown_op
    # 6.5 expiry (issue 14); older daemons answer unknown_op. 78 and 79 are journal-only.
    "dexpire": 70, "dpersist": 71, "dttl": 72, "dgetex": 73, "ddelifeq": 74, "expire": 75,
    "ttl": 76,
    # 6.4 deque ops, 6.6 blocking pops, 6.7 guards (issue 15)
    "lappendleft": 60, "lpopleft": 61, "lextendleft": 62, "lrotate": 63, "lmove": 64,
    "lbpop": 65, "lbmove": 66, "cancel": 67, "guard": 68,
    # events (issue 16, PROTOCOL.md 6.8): all but publish need push
    "publish": 80, "subscribe": 81, "psubscribe": 82, "unsubscribe": 83, "watch": 84,
    "tracking": 85,
    # 6.9 observability and administration (issue 17); older daemons answer unknown_op
    "slowlog": 90, "latency": 91, "monitor": 92, "clients": 93, "kill_client": 94,
    "config_get": 95, "config_set": 96,
}
OP_NAME = {v: k for k, v in OP.items()}

ERR = {
    "bad_request": 1, "unknown_op": 2, "no_such_table": 3, "table_exists": 4, "wrong_kind": 5,
    "key_not_found": 6, "index_out_of_range": 7, "value_not_found": 8, "type_error": 9,
    "too_large": 10, "too_many_connections": 11, "handshake": 12, "auth_failed": 13,
    "guard_failed": 21,
    "overflow": 14, "idle_timeout": 15, "shutting_down": 16, "io_error": 17, "internal": 18,
    "forbidden": 19, "out_of_memory": 20,
}
ERR_NAME = {v: k for k, v in ERR.items()}

PROTO_VERSION = 1


class CyberDBError(Exception):
    """A failure reply [id, code, message]. Unknown codes get the name "unknown"."""

    def __init__(self, code, name, message, id=None):
        super().__init__("%s (%d): %s" % (name, code, message))
        self.code = code
        self.name = name
        self.message = message
        self.id = id


class ConnectionClosed(Exception):
    """The server closed the connection (possibly after an unsolicited id-0 frame)."""


# --------------------------------------------------------------------------------------------
# Minimal CBOR codec

class Tag:
    """A tagged item (major type 6). Tags are opaque to cyberdb (PROTOCOL.md section 5), so
    Tag(55799, x) and x are different values; only bignums (tags 2 and 3) are integers."""

    def __init__(self, tag, value):
        self.tag, self.value = tag, value

    def __eq__(self, other):
        return isinstance(other, Tag) and self.tag == other.tag and _eq(self.value, other.value)

    def __hash__(self):
        return hash(("Tag", self.tag, _hashable(self.value)))

    def __repr__(self):
        return "Tag(%d, %r)" % (self.tag, self.value)


class Simple:
    """A simple value other than false, true, null and undefined (major type 7, 0..19 and
    32..255)."""

    def __init__(self, n):
        if not (0 <= n <= 19 or 32 <= n <= 255):
            raise ValueError("simple value %d is reserved or has a name of its own" % n)
        self.n = n

    def __eq__(self, other):
        return isinstance(other, Simple) and self.n == other.n

    def __hash__(self):
        return hash(("Simple", self.n))

    def __repr__(self):
        return "simple(%d)" % self.n


class Float:
    """A float sent with a chosen width (16, 32 or 64 bits) instead of encode()'s 64 bits; the
    value must be exact in that width. nan_bits, if given, are the raw bits of a NaN (to send
    NaNs with a sign or payload)."""

    def __init__(self, value, width, nan_bits=None):
        self.value, self.width, self.nan_bits = float(value), width, nan_bits

    def __repr__(self):
        return "Float(%r, %d)" % (self.value, self.width)


class Map:
    """A CBOR map as an ordered list of (key, value) pairs. Python's dict cannot hold a map with
    the keys 1, 1.0 and true (they are one key to Python, three to cyberdb), nor unhashable keys;
    decode(strict=True) returns maps as Map. Two Maps are equal when their canonical encodings
    are (key order does not matter)."""

    def __init__(self, pairs=()):
        self.pairs = [(k, v) for k, v in (pairs.items() if isinstance(pairs, dict) else pairs)]

    def __eq__(self, other):
        return isinstance(other, Map) and encode_canonical(self) == encode_canonical(other)

    def __hash__(self):
        return hash(encode_canonical(self))

    def __len__(self):
        return len(self.pairs)

    def __repr__(self):
        return "Map(%r)" % (self.pairs,)


class Raw:
    """Pre-encoded CBOR bytes, inserted verbatim by encode() (for tests of odd encodings)."""

    def __init__(self, data):
        self.data = bytes(data)

    def __repr__(self):
        return "Raw(h'%s')" % self.data.hex()


class _UndefinedType:
    def __repr__(self):
        return "undefined"

    def __reduce__(self):
        return "Undefined"


Undefined = _UndefinedType()


def _eq(a, b):
    # Tag contents compare strictly (1 != 1.0 != True), as cyberdb does.
    try:
        return encode_canonical(a) == encode_canonical(b)
    except (TypeError, ValueError):
        return a == b


def _head(major, n):
    if n < 24:
        return bytes([(major << 5) | n])
    if n < 0x100:
        return bytes([(major << 5) | 24, n])
    if n < 0x10000:
        return bytes([(major << 5) | 25]) + struct.pack(">H", n)
    if n < 0x100000000:
        return bytes([(major << 5) | 26]) + struct.pack(">I", n)
    if n < 0x10000000000000000:
        return bytes([(major << 5) | 27]) + struct.pack(">Q", n)
    raise OverflowError("integer %d outside the CBOR integer range" % n)


def _int(n, out):
    """An integer in preferred serialization: a head when it fits the CBOR integer range,
    else a bignum (tag 2 or 3) without leading zero bytes (RFC 8949 section 3.4.3)."""
    if n >= 0:
        if n < 1 << 64:
            out += _head(0, n)
        else:
            b = n.to_bytes((n.bit_length() + 7) // 8, "big")
            out += b"\xc2" + _head(2, len(b)) + b
    else:
        m = -1 - n
        if m < 1 << 64:
            out += _head(1, m)
        else:
            b = m.to_bytes((m.bit_length() + 7) // 8, "big")
            out += b"\xc3" + _head(2, len(b)) + b


def encode(obj):
    """Encode obj as CBOR with shortest-form heads. Floats are sent as 64-bit floats
    (the server canonicalises them); integers beyond the CBOR range as bignums (tags 2/3).
    Python tuples encode as arrays, dicts and Maps as maps in their own order."""
    out = bytearray()
    _enc(obj, out, False)
    return bytes(out)


def encode_canonical(obj):
    """Encode obj in Core Deterministic Encoding (RFC 8949 section 4.2.1), the form cyberdb
    stores and replies in: shortest heads, shortest exact floats (every NaN as f97e00),
    bignums only beyond the CBOR integer range, map keys sorted bytewise by their encoding."""
    out = bytearray()
    _enc(obj, out, True)
    return bytes(out)


def _float(x, out, canonical):
    if not canonical:
        out.append(0xFB)
        out += struct.pack(">d", x)
        return
    if x != x:
        out += b"\xf9\x7e\x00"
        return
    for code, fmt in ((0xF9, ">e"), (0xFA, ">f")):
        try:
            b = struct.pack(fmt, x)
        except OverflowError:
            continue
        if struct.unpack(fmt, b)[0] == x:
            out.append(code)
            out += b
            return
    out.append(0xFB)
    out += struct.pack(">d", x)


def _enc(obj, out, canonical):
    if obj is None:
        out.append(0xF6)
    elif obj is True:
        out.append(0xF5)
    elif obj is False:
        out.append(0xF4)
    elif obj is Undefined:
        out.append(0xF7)
    elif isinstance(obj, Raw):
        out += encode_canonical(decode(obj.data, strict=True)) if canonical else obj.data
    elif isinstance(obj, int):
        _int(obj, out)
    elif isinstance(obj, float):
        _float(obj, out, canonical)
    elif isinstance(obj, Float):
        if canonical:
            _float(obj.value, out, True)
        elif obj.nan_bits is not None:
            code = {16: 0xF9, 32: 0xFA, 64: 0xFB}[obj.width]
            out.append(code)
            out += obj.nan_bits.to_bytes(obj.width // 8, "big")
        else:
            code, fmt = {16: (0xF9, ">e"), 32: (0xFA, ">f"), 64: (0xFB, ">d")}[obj.width]
            out.append(code)
            out += struct.pack(fmt, obj.value)
    elif isinstance(obj, str):
        b = obj.encode("utf-8")
        out += _head(3, len(b))
        out += b
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        b = bytes(obj)
        out += _head(2, len(b))
        out += b
    elif isinstance(obj, (list, tuple)):
        out += _head(4, len(obj))
        for x in obj:
            _enc(x, out, canonical)
    elif isinstance(obj, (dict, Map)):
        pairs = obj.pairs if isinstance(obj, Map) else list(obj.items())
        out += _head(5, len(pairs))
        enc = []
        for k, v in pairs:
            kb, vb = bytearray(), bytearray()
            _enc(k, kb, canonical)
            _enc(v, vb, canonical)
            enc.append((bytes(kb), bytes(vb)))
        if canonical:
            enc.sort(key=lambda kv: kv[0])
        for kb, vb in enc:
            out += kb
            out += vb
    elif isinstance(obj, Tag):
        out += _head(6, obj.tag)
        _enc(obj.value, out, canonical)
    elif isinstance(obj, Simple):
        out += bytes([0xE0 | obj.n]) if obj.n < 24 else bytes([0xF8, obj.n])
    else:
        raise TypeError("cannot encode %r as CBOR" % (obj,))


class DecodeError(ValueError):
    pass


def _half(h):
    s, e, f = h >> 15, (h >> 10) & 0x1F, h & 0x3FF
    if e == 0:
        v = f * 2.0 ** -24
    elif e == 31:
        v = float("nan") if f else float("inf")
    else:
        v = (1024 + f) * 2.0 ** (e - 25)
    return -v if s else v


def _hashable(x):
    """Python dicts need hashable keys: arrays become tuples, maps frozensets of pairs."""
    if isinstance(x, list):
        return tuple(_hashable(i) for i in x)
    if isinstance(x, dict):
        return frozenset((k, _hashable(v)) for k, v in x.items())
    return x


_BREAK = object()


def decode_prefix(data, pos=0, strict=False):
    """Decode one item at data[pos:]; return (item, new_pos). See decode for strict."""
    return _dec(memoryview(bytes(data)), pos, strict)


def decode(data, strict=False):
    """Decode exactly one CBOR item; trailing bytes are an error.

    strict=False (the default) gives plain Python values: maps become dicts (arrays as keys
    become tuples; keys 1, 1.0 and true collapse, as in Python), bignums stay Tag(2/3, bytes).
    strict=True keeps every distinction cyberdb makes: maps become Map (ordered pairs), bignums
    (tags 2 and 3 around a byte string) become ints, so a value re-encodes with
    encode_canonical to the same bytes when it was canonical."""
    item, pos = decode_prefix(data, 0, strict)
    if pos != len(data):
        raise DecodeError("%d trailing bytes after the CBOR item" % (len(data) - pos))
    return item


def _arg(data, pos, ai):
    if ai < 24:
        return ai, pos
    size = {24: 1, 25: 2, 26: 4, 27: 8}.get(ai)
    if size is None:
        raise DecodeError("bad additional info %d" % ai)
    if pos + size > len(data):
        raise DecodeError("truncated")
    return int.from_bytes(data[pos:pos + size], "big"), pos + size


def _need(data, pos, n):
    if pos + n > len(data):
        raise DecodeError("truncated")


def _dec(data, pos, strict):
    if pos >= len(data):
        raise DecodeError("truncated")
    ib = data[pos]
    pos += 1
    major, ai = ib >> 5, ib & 0x1F
    if major == 7:
        if ai == 20:
            return False, pos
        if ai == 21:
            return True, pos
        if ai == 22:
            return None, pos
        if ai == 23:
            return Undefined, pos
        if ai == 25:
            _need(data, pos, 2)
            return _half(int.from_bytes(data[pos:pos + 2], "big")), pos + 2
        if ai == 26:
            _need(data, pos, 4)
            return struct.unpack(">f", data[pos:pos + 4])[0], pos + 4
        if ai == 27:
            _need(data, pos, 8)
            return struct.unpack(">d", data[pos:pos + 8])[0], pos + 8
        if ai == 31:
            return _BREAK, pos
        if ai < 24:
            return Simple(ai), pos
        if ai == 24:
            _need(data, pos, 1)
            if data[pos] < 32:
                raise DecodeError("simple value %d in two bytes" % data[pos])
            return Simple(data[pos]), pos + 1
        raise DecodeError("bad simple value")
    if ai == 31:  # indefinite length
        if major in (2, 3):
            chunks = []
            while True:
                item, pos = _dec(data, pos, strict)
                if item is _BREAK:
                    break
                chunks.append(item)
            return (b"" if major == 2 else "").join(chunks), pos
        if major == 4:
            items = []
            while True:
                item, pos = _dec(data, pos, strict)
                if item is _BREAK:
                    return items, pos
                items.append(item)
        if major == 5:
            pairs = []
            while True:
                k, pos = _dec(data, pos, strict)
                if k is _BREAK:
                    return (Map(pairs) if strict else {_hashable(k): v for k, v in pairs}), pos
                v, pos = _dec(data, pos, strict)
                pairs.append((k, v))
        raise DecodeError("indefinite length for major type %d" % major)
    n, pos = _arg(data, pos, ai)
    if major == 0:
        return n, pos
    if major == 1:
        return -1 - n, pos
    if major in (2, 3):
        if pos + n > len(data):
            raise DecodeError("truncated string")
        b = bytes(data[pos:pos + n])
        return (b if major == 2 else b.decode("utf-8")), pos + n
    if major == 4:
        items = []
        for _ in range(n):
            item, pos = _dec(data, pos, strict)
            items.append(item)
        return items, pos
    if major == 5:
        pairs = []
        for _ in range(n):
            k, pos = _dec(data, pos, strict)
            v, pos = _dec(data, pos, strict)
            pairs.append((k, v))
        return (Map(pairs) if strict else {_hashable(k): v for k, v in pairs}), pos
    if major == 6:
        v, pos = _dec(data, pos, strict)
        if strict and n in (2, 3) and isinstance(v, bytes):
            i = int.from_bytes(v, "big")
            return (i if n == 2 else -1 - i), pos
        return Tag(n, v), pos
    raise DecodeError("unreachable")


# --------------------------------------------------------------------------------------------
# Connection

class Client:
    """One connection to cyberdbd. Not thread-safe: share it under a lock, or use one per thread."""

    def __init__(self):
        self.sock = None
        self._next_id = 1
        self._pending = []  # ids sent and not yet answered, in order
        self._buf = bytearray()
        self.server_info = None
        # The push extension (PROTOCOL.md 3.1): negotiated by hello(push=True).
        self.push = False
        self._stash = {}  # push connection: replies read ahead of the one asked for, by id
        self.pushes = []  # push messages [0, 0, {"push": KIND, ...}] received, in order

    # -- connection --------------------------------------------------------------------------
    def connect(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        return self

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def hello(self, client="cyberdb_client.py", proto=PROTO_VERSION, **options):
        options = dict(options)
        if client is not None:
            options["client"] = client
        self.server_info = self.call(OP["hello"], proto, options)
        self.push = isinstance(self.server_info, dict) and self.server_info.get("push") is True
        return self.server_info

    # -- framing -----------------------------------------------------------------------------
    def send_frame(self, body):
        """Send one frame with the given raw body bytes."""
        self.sock.sendall(struct.pack(">I", len(body)) + bytes(body))

    def _read_exact(self, n):
        while len(self._buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self._buf)))
            if not chunk:
                raise ConnectionClosed("connection closed by the server")
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def recv_frame(self):
        """Read one frame; return its raw body."""
        (n,) = struct.unpack(">I", self._read_exact(4))
        return self._read_exact(n)

    # -- requests ----------------------------------------------------------------------------
    def send(self, op, *args, id=None):
        """Send a request without waiting; return its id."""
        if id is None:
            id = self._next_id
            self._next_id += 1
        self.send_frame(encode([id, op] + list(args)))
        self._pending.append(id)
        return id

    def _read_reply(self):
        reply = decode(self.recv_frame())
        if not (isinstance(reply, list) and len(reply) == 3):
            raise DecodeError("malformed reply %r" % (reply,))
        return reply

    def recv_id(self, id):
        """Push connection: read until the reply to request id comes, and return it as
        (id, code, result_or_message); replies to other requests that come first are kept
        for later, push messages go to self.pushes (unknown kinds are simply kept)."""
        if id in self._stash:
            reply = self._stash.pop(id)
        else:
            while True:
                reply = self._read_reply()
                if reply[0] == 0 and reply[1] == 0 and isinstance(reply[2], dict) and "push" in reply[2]:
                    self.pushes.append(reply[2])
                    continue
                if reply[0] == id or reply[0] == 0:
                    break
                self._stash[reply[0]] = reply
        if id in self._pending:
            self._pending.remove(id)
        return reply[0], reply[1], reply[2]

    def recv_raw(self):
        """Read the next reply as (id, code, result_or_message), without raising. On a push
        connection: the reply to the oldest request still unanswered, whatever the order
        in which the server sends them."""
        if self.push and self._pending:
            return self.recv_id(self._pending[0])
        reply = decode(self.recv_frame())
        if not (isinstance(reply, list) and len(reply) == 3):
            raise DecodeError("malformed reply %r" % (reply,))
        if self._pending:
            expected = self._pending.pop(0)
            # Replies come in request order. An id-0 reply takes the place of a request whose
            # id the server could not read (PROTOCOL.md section 3); it may also be an
            # unsolicited frame sent just before the server closes the connection.
            if reply[0] not in (expected, 0):
                raise DecodeError("reply id %r out of order (expected %r)" % (reply[0], expected))
        return reply[0], reply[1], reply[2]

    def recv(self):
        """Read the next reply in order; return its result or raise CyberDBError."""
        id, code, value = self.recv_raw()
        if code != 0:
            raise CyberDBError(code, ERR_NAME.get(code, "unknown"), value, id=id)
        return value

    def call(self, op, *args):
        """Send one request and wait for its reply."""
        if isinstance(op, str):
            op = OP[op]
        self.send(op, *args)
        return self.recv()

    def pipeline(self, requests, window=128):
        """Send [(op, args...), ...] without waiting, then read every reply in order.
        Returns a list of results, with CyberDBError instances in place of failures.

        At most `window` requests are in flight: a client that writes without ever reading
        fills the socket buffers in both directions and deadlocks with the server (which
        stops reading while it cannot write replies)."""
        out = []

        def read_one():
            try:
                out.append(self.recv())
            except CyberDBError as e:
                out.append(e)

        for n, req in enumerate(requests):
            if n >= window:
                read_one()
            self.send(req[0], *req[1:])
        while len(out) < len(requests):
            read_one()
        return out

    def bpop(self, tables, end="left", timeout_ms=None):
        """Blocking pop (lbpop, PROTOCOL.md 6.6): [table, value], or None on time-out."""
        return self.call(OP["lbpop"], list(tables), end, timeout_ms)

    def cancel(self, id):
        """Cancel the parked request id (push connections): True when it was waiting, and
        then its reply [id, 0, None] has been read too."""
        cid = self.send(OP["cancel"], id)
        _, code, value = self.recv_id(cid)
        if code != 0:
            raise CyberDBError(code, ERR_NAME.get(code, "unknown"), value, id=cid)
        if value is True:
            self.recv_id(id)  # its null came just before
        return value

    def monitor(self):
        """Start monitoring (push connections, PROTOCOL.md 6.9): returns the subscription id;
        the pushes land in self.pushes (next_push reads them)."""
        mid = self.send(OP["monitor"])
        _, code, value = self.recv_id(mid)
        if code != 0:
            raise CyberDBError(code, ERR_NAME.get(code, "unknown"), value, id=mid)
        return value["sub"]

    # -- server push (PROTOCOL.md 6.8) ---------------------------------------------------------
    def subscribe(self, *channels):
        """Subscribe to channels (needs hello(push=True)); returns the subscription id."""
        return self.call(OP["subscribe"], *channels)["sub"]

    def psubscribe(self, *patterns):
        """Subscribe to Redis glob patterns; returns the subscription id."""
        return self.call(OP["psubscribe"], *patterns)["sub"]

    def unsubscribe(self, sub):
        return self.call(OP["unsubscribe"], sub)

    def publish(self, channel, message):
        """Publish; returns how many subscriptions received it."""
        return self.call(OP["publish"], channel, message)

    def watch(self, table, key=None, prefix=None, values=False):
        """Watch a table (one key, or text keys with a prefix); returns the reply map
        {"sub", "seq", "exists", "run"}."""
        opts = {}
        if key is not None:
            opts["key"] = key
        if prefix is not None:
            opts["prefix"] = prefix
        if values:
            opts["values"] = True
        return self.call(OP["watch"], table, opts)

    def next_push(self, kind=None):
        """Return the next push message (of kind, a text or a tuple of them, when given: others
        are skipped), reading frames as needed. Replies read meanwhile are kept for recv_id."""
        while True:
            while self.pushes:
                m = self.pushes.pop(0)
                if kind is None or m.get("push") == kind or (isinstance(kind, tuple) and m.get("push") in kind):
                    return m
            reply = self._read_reply()
            if reply[0] == 0 and reply[1] == 0 and isinstance(reply[2], dict) and "push" in reply[2]:
                self.pushes.append(reply[2])
            elif reply[0] == 0:
                raise CyberDBError(reply[1], ERR_NAME.get(reply[1], "unknown"), reply[2], id=0)
            else:
                self._stash[reply[0]] = reply

    def batch(self, *ops):
        """Atomic batch: each op is (op, arg1, ...)."""
        return self.call(OP["batch"], [[o[0]] + list(o[1:]) for o in ops])

    def __getattr__(self, name):
        # c.dget("t", "k") == c.call(OP["dget"], "t", "k")
        if name in OP:
            return lambda *args: self.call(OP[name], *args)
        raise AttributeError(name)
