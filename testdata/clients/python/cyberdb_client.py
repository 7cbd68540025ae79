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
    "Tag", "Raw", "Undefined", "encode", "decode", "decode_prefix",
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
}
OP_NAME = {v: k for k, v in OP.items()}

ERR = {
    "bad_request": 1, "unknown_op": 2, "no_such_table": 3, "table_exists": 4, "wrong_kind": 5,
    "key_not_found": 6, "index_out_of_range": 7, "value_not_found": 8, "type_error": 9,
    "too_large": 10, "too_many_connections": 11, "handshake": 12, "auth_failed": 13,
    "overflow": 14, "idle_timeout": 15, "shutting_down": 16, "io_error": 17, "internal": 18,
    "forbidden": 19,
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
    """A tagged item (major type 6)."""

    def __init__(self, tag, value):
        self.tag, self.value = tag, value

    def __eq__(self, other):
        return isinstance(other, Tag) and (self.tag, self.value) == (other.tag, other.value)

    def __hash__(self):
        return hash(("Tag", self.tag, _hashable(self.value)))

    def __repr__(self):
        return "Tag(%d, %r)" % (self.tag, self.value)


class Raw:
    """Pre-encoded CBOR bytes, inserted verbatim by encode() (for tests of odd encodings)."""

    def __init__(self, data):
        self.data = bytes(data)


class _UndefinedType:
    def __repr__(self):
        return "Undefined"


Undefined = _UndefinedType()


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


def encode(obj):
    """Encode obj as CBOR with shortest-form heads. Floats are sent as 64-bit floats
    (the server canonicalises them). Python tuples encode as arrays."""
    out = bytearray()
    _enc(obj, out)
    return bytes(out)


def _enc(obj, out):
    if obj is None:
        out.append(0xF6)
    elif obj is True:
        out.append(0xF5)
    elif obj is False:
        out.append(0xF4)
    elif obj is Undefined:
        out.append(0xF7)
    elif isinstance(obj, Raw):
        out += obj.data
    elif isinstance(obj, int):
        if obj >= 0:
            out += _head(0, obj)
        else:
            out += _head(1, -1 - obj)
    elif isinstance(obj, float):
        out.append(0xFB)
        out += struct.pack(">d", obj)
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
            _enc(x, out)
    elif isinstance(obj, dict):
        out += _head(5, len(obj))
        for k, v in obj.items():
            _enc(k, out)
            _enc(v, out)
    elif isinstance(obj, Tag):
        out += _head(6, obj.tag)
        _enc(obj.value, out)
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


def decode_prefix(data, pos=0):
    """Decode one item at data[pos:]; return (item, new_pos)."""
    return _dec(memoryview(bytes(data)), pos)


def decode(data):
    """Decode exactly one CBOR item; trailing bytes are an error."""
    item, pos = decode_prefix(data)
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


def _dec(data, pos):
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
            return _half(int.from_bytes(data[pos:pos + 2], "big")), pos + 2
        if ai == 26:
            return struct.unpack(">f", data[pos:pos + 4])[0], pos + 4
        if ai == 27:
            return struct.unpack(">d", data[pos:pos + 8])[0], pos + 8
        if ai == 31:
            return _BREAK, pos
        if ai < 24:
            return Tag(-1, ai), pos  # unassigned simple value
        if ai == 24:
            return Tag(-1, data[pos]), pos + 1
        raise DecodeError("bad simple value")
    if ai == 31:  # indefinite length
        if major in (2, 3):
            chunks = []
            while True:
                item, pos = _dec(data, pos)
                if item is _BREAK:
                    break
                chunks.append(item)
            return (b"" if major == 2 else "").join(chunks), pos
        if major == 4:
            items = []
            while True:
                item, pos = _dec(data, pos)
                if item is _BREAK:
                    return items, pos
                items.append(item)
        if major == 5:
            m = {}
            while True:
                k, pos = _dec(data, pos)
                if k is _BREAK:
                    return m, pos
                v, pos = _dec(data, pos)
                m[_hashable(k)] = v
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
            item, pos = _dec(data, pos)
            items.append(item)
        return items, pos
    if major == 5:
        m = {}
        for _ in range(n):
            k, pos = _dec(data, pos)
            v, pos = _dec(data, pos)
            m[_hashable(k)] = v
        return m, pos
    if major == 6:
        v, pos = _dec(data, pos)
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

    def recv_raw(self):
        """Read the next reply as (id, code, result_or_message), without raising."""
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

    def batch(self, *ops):
        """Atomic batch: each op is (op, arg1, ...)."""
        return self.call(OP["batch"], [[o[0]] + list(o[1:]) for o in ops])

    def __getattr__(self, name):
        # c.dget("t", "k") == c.call(OP["dget"], "t", "k")
        if name in OP:
            return lambda *args: self.call(OP[name], *args)
        raise AttributeError(name)
