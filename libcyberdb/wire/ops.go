package wire

import "fmt"

// Op is an operation number. The numbers are part of the protocol and never
// change; PROTOCOL.md gives each one's arguments and result.
type Op uint16

// Connection and server operations.
const (
	OpHello Op = 1 // [proto, {opts}]            -> {"proto","server","features","max_frame",...}
	OpPing  Op = 2 // [payload?]                  -> "PONG" or payload
	OpInfo  Op = 3 // []                          -> {info map}
	OpSave  Op = 4 // []                          -> null, once a snapshot is durable
)

// Table management.
const (
	OpTables     Op = 10 // []                     -> [[name, kind, len]...]
	OpCreateDict Op = 11 // [name, content?]        -> null; content: map or [[k, v]...]
	OpCreateList Op = 12 // [name, content?]        -> null; content: array
	OpExists     Op = 13 // [name]                  -> bool
	OpDrop       Op = 14 // [name]                  -> null
	OpLen        Op = 15 // [name]                  -> uint (dict or list)
	OpBatch      Op = 16 // [[op, arg...]...]       -> [result...]
)

// Dict operations: the first argument is the table name.
const (
	OpDGet        Op = 20 // [t, key, default?]     -> value
	OpDSet        Op = 21 // [t, key, value]        -> null
	OpDDel        Op = 22 // [t, key]               -> null
	OpDHas        Op = 23 // [t, key]               -> bool
	OpDLen        Op = 24 // [t]                    -> uint
	OpDKeys       Op = 25 // [t]                    -> [key...]
	OpDValues     Op = 26 // [t]                    -> [value...]
	OpDItems      Op = 27 // [t]                    -> [[key, value]...]
	OpDPop        Op = 28 // [t, key, default?]     -> value
	OpDPopItem    Op = 29 // [t]                    -> [key, value]
	OpDSetDefault Op = 30 // [t, key, default?]     -> value
	OpDUpdate     Op = 31 // [t, map or [[k, v]...]] -> null
	OpDClear      Op = 32 // [t]                    -> null
	OpDToDict     Op = 33 // [t]                    -> map in insertion order
	OpDIncr       Op = 34 // [t, key, delta?]       -> new value
	OpDCAS        Op = 35 // [t, key, new, expected?] -> bool (set iff current == expected, or absent when omitted)
	OpDScan       Op = 36 // [t, cursor, count]     -> [next cursor, [[key, value]...]]
)

// List operations: the first argument is the table name.
const (
	OpLGet      Op = 40 // [t, index]                 -> value
	OpLSet      Op = 41 // [t, index, value]          -> null
	OpLDel      Op = 42 // [t, index]                 -> null
	OpLSlice    Op = 43 // [t, start?, stop?, step?]  -> [value...]
	OpLDelSlice Op = 44 // [t, start?, stop?, step?]  -> null
	OpLAppend   Op = 45 // [t, value...]              -> uint new length
	OpLExtend   Op = 46 // [t, [value...]]            -> uint new length
	OpLInsert   Op = 47 // [t, index, value]          -> null
	OpLPop      Op = 48 // [t, index?]                -> value
	OpLRemove   Op = 49 // [t, value]                 -> null
	OpLCount    Op = 50 // [t, value]                 -> uint
	OpLIndex    Op = 51 // [t, value, start?, stop?]  -> int
	OpLReverse  Op = 52 // [t]                        -> null
	OpLSort     Op = 53 // [t, reverse?]              -> null
	OpLClear    Op = 54 // [t]                        -> null
	OpLToList   Op = 55 // [t]                        -> [value...]
	OpLLen      Op = 56 // [t]                        -> uint
	OpLRange    Op = 57 // [t, start, count]          -> [value...]
)

type opInfo struct {
	name  string
	write bool // changes data: logged, refused when the disk has failed
}

var ops = map[Op]opInfo{
	OpHello: {"hello", false}, OpPing: {"ping", false}, OpInfo: {"info", false}, OpSave: {"save", false},
	OpTables: {"tables", false}, OpCreateDict: {"create_dict", true}, OpCreateList: {"create_list", true},
	OpExists: {"exists", false}, OpDrop: {"drop", true}, OpLen: {"len", false}, OpBatch: {"batch", true},

	OpDGet: {"dget", false}, OpDSet: {"dset", true}, OpDDel: {"ddel", true}, OpDHas: {"dhas", false},
	OpDLen: {"dlen", false}, OpDKeys: {"dkeys", false}, OpDValues: {"dvalues", false},
	OpDItems: {"ditems", false}, OpDPop: {"dpop", true}, OpDPopItem: {"dpopitem", true},
	OpDSetDefault: {"dsetdefault", true}, OpDUpdate: {"dupdate", true}, OpDClear: {"dclear", true},
	OpDToDict: {"dtodict", false}, OpDIncr: {"dincr", true}, OpDCAS: {"dcas", true}, OpDScan: {"dscan", false},

	OpLGet: {"lget", false}, OpLSet: {"lset", true}, OpLDel: {"ldel", true}, OpLSlice: {"lslice", false},
	OpLDelSlice: {"ldelslice", true}, OpLAppend: {"lappend", true}, OpLExtend: {"lextend", true},
	OpLInsert: {"linsert", true}, OpLPop: {"lpop", true}, OpLRemove: {"lremove", true},
	OpLCount: {"lcount", false}, OpLIndex: {"lindex", false}, OpLReverse: {"lreverse", true},
	OpLSort: {"lsort", true}, OpLClear: {"lclear", true}, OpLToList: {"ltolist", false},
	OpLLen: {"llen", false}, OpLRange: {"lrange", false},
}

// String returns the op's protocol name, e.g. "dget".
func (o Op) String() string {
	if i, ok := ops[o]; ok {
		return i.name
	}
	return fmt.Sprintf("op_%d", uint16(o))
}

// Known reports whether o is an operation defined by this protocol version.
func (o Op) Known() bool { _, ok := ops[o]; return ok }

// IsWrite reports whether o may change data (and so is logged for durability).
func (o Op) IsWrite() bool { return int(o) < len(writeOps) && writeOps[o] }

// writeOps is ops' write flags as an array: IsWrite runs twice per
// request in the daemon, where a map lookup showed in profiles.
var writeOps = func() (w [256]bool) {
	for o, i := range ops {
		if int(o) >= len(w) {
			panic("wire: op numbers above 255 need a bigger writeOps")
		}
		w[o] = i.write
	}
	return w
}()

// IsDict and IsList report which table kind an op addresses.
func (o Op) IsDict() bool { return o >= OpDGet && o <= OpDScan }
func (o Op) IsList() bool { return o >= OpLGet && o <= OpLRange }

// Ops returns every defined op in numeric order.
func Ops() []Op {
	out := make([]Op, 0, len(ops))
	for o := Op(0); o < 256; o++ {
		if o.Known() {
			out = append(out, o)
		}
	}
	return out
}

// ProtocolVersion is the version a client names in HELLO.
const ProtocolVersion = 1

// DefaultMaxFrame is the daemon's default --max-frame: 16 MiB.
const DefaultMaxFrame = 16 << 20

// MaxNesting is how deeply arrays, maps and tags may nest in one frame.
const MaxNesting = 64
