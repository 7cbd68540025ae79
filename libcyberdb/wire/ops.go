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
	OpLSetSlice Op = 58 // [t, start, stop, step, [value...]] -> null
	OpLContains Op = 59 // [t, value]                 -> bool
)

// Expiry (issue 14). TTLs are in milliseconds; "when" is a map, one of
// {"ttl": ms} (from now), {"at": unix-ms} (a deadline) or, where it says
// so, {"persist": true} (no deadline). See PROTOCOL.md 4.5.
const (
	OpDExpire  Op = 70 // [t, key, when]            -> bool (false: no such key)
	OpDPersist Op = 71 // [t, key]                  -> bool (a deadline was removed)
	OpDTTL     Op = 72 // [t, key, absolute?]       -> uint ms left (unix ms if absolute), null: none
	OpDGetEx   Op = 73 // [t, key, when]            -> value, its deadline changed
	OpDDelIfEq Op = 74 // [t, key, value]           -> bool (deleted: it held value)
	OpExpire   Op = 75 // [t, when]                 -> null (a whole table, dict or list)
	OpTTL      Op = 76 // [t, absolute?]            -> uint ms left (unix ms if absolute), null: none

	// Journal-only ops: written to the log by the daemon, refused from
	// clients (see JournalOnly).
	OpTimed   Op = 78 // [unix-ms, [op, arg...]]     the op ran with that clock reading
	OpDRemove Op = 79 // [t, reason, key...]         keys the daemon expired or evicted
)

// Deque and queue operations (PROTOCOL.md 6.4, 6.6). An end is the text
// "left" or "right"; a timeout is milliseconds, null or absent: forever.
const (
	OpLAppendLeft Op = 60 // [t, value...]                     -> uint new length
	OpLPopLeft    Op = 61 // [t]                               -> value
	OpLExtendLeft Op = 62 // [t, [value...]]                   -> uint new length
	OpLRotate     Op = 63 // [t, n?]                           -> null
	OpLMove       Op = 64 // [src, dst, from, to]              -> the value moved
	OpLBPop       Op = 65 // [[t...], end, timeout?]           -> [t, value], null on timeout (blocking)
	OpLBMove      Op = 66 // [src, dst, from, to, timeout?]    -> [src, value], null on timeout (blocking)
	OpCancel      Op = 67 // [id]                              -> bool: a blocked request was cancelled
	OpGuard       Op = 68 // [t, kind, arg...]                 -> null, or guard_failed
)

// Events: pub/sub, watches and read-cache tracking (PROTOCOL.md 6.7-6.9).
// All but publish need the push extension (3.1); their pushes name the
// subscription id their reply gives.
const (
	OpPublish     Op = 80 // [channel, message]                -> uint receivers
	OpSubscribe   Op = 81 // [channel...]                      -> {"sub"}
	OpPSubscribe  Op = 82 // [pattern...]                      -> {"sub"}
	OpUnsubscribe Op = 83 // [sub]                             -> bool (it was live)
	OpWatch       Op = 84 // [t, {"key"|"prefix", "values"}?]  -> {"sub", "seq", "exists", "run"}
	OpTracking    Op = 85 // [on]                              -> {"sub"} (on), bool (off)
)

// Observability and administration (PROTOCOL.md 6.9). None of them is
// journaled; on a TCP listener, like every op, they need the password.
const (
	OpSlowLog    Op = 90 // ["get", n?] | ["len"] | ["reset"]  -> [entry...] | uint | null
	OpLatency    Op = 91 // [reset?]                  -> {op: {"count", "p50_us", "p99_us", "p999_us", "max_us"}}
	OpMonitor    Op = 92 // [on?]                     -> {"sub": id} (push connections); [false] -> bool
	OpClients    Op = 93 // []                        -> [{"id", "pid", "uid", "addr", ...}...]
	OpKillClient Op = 94 // [conn id]                 -> bool: it was open and is being closed
	OpConfigGet  Op = 95 // [name?]                   -> [[name, value, live]...]
	OpConfigSet  Op = 96 // [name, value]             -> null
)

// Op numbers in use and reserved. Every op number is below 256 (the
// tables below are arrays indexed by op); numbers are never reused.
//
//	1-4    connection and server        10-16  tables and batch
//	20-36  dict                         40-59  list
//	60-68  deque and queue ops, cancel, guard (issue 15); 69 free
//	70-79  expiry (issue 14); 77 free
//	80-85  events: pub/sub, watch, tracking (issue 16); 86-89 free
//	90-96  observability and administration (issue 17); 97-99 free

// opKind says which kind of table an op addresses.
type opKind uint8

const (
	kindNone opKind = iota // a connection, server or table-management op
	kindDict
	kindList
)

type opInfo struct {
	name  string
	write bool   // changes data: logged, refused when the disk has failed
	kind  opKind // the table kind the op needs
}

// blockingOps are the ops that may wait for data: on a push connection
// their replies may come after replies to later requests (PROTOCOL.md 3.1).
var blockingOps = [256]bool{OpLBPop: true, OpLBMove: true}

// opTable describes every op; a zero entry (no name) is no op. It is an
// array, not a map, because the daemon looks ops up several times per
// request (a map lookup showed in profiles). An op is added by adding
// one line here, at any number below 256.
var opTable = [256]opInfo{
	OpHello: {"hello", false, kindNone},
	OpPing:  {"ping", false, kindNone},
	OpInfo:  {"info", false, kindNone},
	OpSave:  {"save", false, kindNone},

	OpTables:     {"tables", false, kindNone},
	OpCreateDict: {"create_dict", true, kindNone},
	OpCreateList: {"create_list", true, kindNone},
	OpExists:     {"exists", false, kindNone},
	OpDrop:       {"drop", true, kindNone},
	OpLen:        {"len", false, kindNone},
	OpBatch:      {"batch", true, kindNone},

	OpDGet:        {"dget", false, kindDict},
	OpDSet:        {"dset", true, kindDict},
	OpDDel:        {"ddel", true, kindDict},
	OpDHas:        {"dhas", false, kindDict},
	OpDLen:        {"dlen", false, kindDict},
	OpDKeys:       {"dkeys", false, kindDict},
	OpDValues:     {"dvalues", false, kindDict},
	OpDItems:      {"ditems", false, kindDict},
	OpDPop:        {"dpop", true, kindDict},
	OpDPopItem:    {"dpopitem", true, kindDict},
	OpDSetDefault: {"dsetdefault", true, kindDict},
	OpDUpdate:     {"dupdate", true, kindDict},
	OpDClear:      {"dclear", true, kindDict},
	OpDToDict:     {"dtodict", false, kindDict},
	OpDIncr:       {"dincr", true, kindDict},
	OpDCAS:        {"dcas", true, kindDict},
	OpDScan:       {"dscan", false, kindDict},

	OpLGet:      {"lget", false, kindList},
	OpLSet:      {"lset", true, kindList},
	OpLDel:      {"ldel", true, kindList},
	OpLSlice:    {"lslice", false, kindList},
	OpLDelSlice: {"ldelslice", true, kindList},
	OpLAppend:   {"lappend", true, kindList},
	OpLExtend:   {"lextend", true, kindList},
	OpLInsert:   {"linsert", true, kindList},
	OpLPop:      {"lpop", true, kindList},
	OpLRemove:   {"lremove", true, kindList},
	OpLCount:    {"lcount", false, kindList},
	OpLIndex:    {"lindex", false, kindList},
	OpLReverse:  {"lreverse", true, kindList},
	OpLSort:     {"lsort", true, kindList},
	OpLClear:    {"lclear", true, kindList},
	OpLToList:   {"ltolist", false, kindList},
	OpLLen:      {"llen", false, kindList},
	OpLRange:    {"lrange", false, kindList},
	OpLSetSlice: {"lsetslice", true, kindList},
	OpLContains: {"lcontains", false, kindList},

	OpDExpire:     {"dexpire", true, kindDict},
	OpDPersist:    {"dpersist", true, kindDict},
	OpDTTL:        {"dttl", false, kindDict},
	OpDGetEx:      {"dgetex", true, kindDict},
	OpDDelIfEq:    {"ddelifeq", true, kindDict},
	OpExpire:      {"expire", true, kindNone},
	OpTTL:         {"ttl", false, kindNone},
	OpTimed:       {"timed", true, kindNone},
	OpDRemove:     {"dremove", true, kindDict},
	OpLAppendLeft: {"lappendleft", true, kindList},
	OpLPopLeft:    {"lpopleft", true, kindList},
	OpLExtendLeft: {"lextendleft", true, kindList},
	OpLRotate:     {"lrotate", true, kindList},
	OpLMove:       {"lmove", true, kindList},
	OpLBPop:       {"lbpop", true, kindNone},
	OpLBMove:      {"lbmove", true, kindNone},
	OpCancel:      {"cancel", false, kindNone},
	OpGuard:       {"guard", true, kindNone},

	OpPublish:     {"publish", false, kindNone},
	OpSubscribe:   {"subscribe", false, kindNone},
	OpPSubscribe:  {"psubscribe", false, kindNone},
	OpUnsubscribe: {"unsubscribe", false, kindNone},
	OpWatch:       {"watch", false, kindNone},
	OpTracking:    {"tracking", false, kindNone},
	OpSlowLog:     {"slowlog", false, kindNone},
	OpLatency:     {"latency", false, kindNone},
	OpMonitor:     {"monitor", false, kindNone},
	OpClients:     {"clients", false, kindNone},
	OpKillClient:  {"kill_client", false, kindNone},
	OpConfigGet:   {"config_get", false, kindNone},
	OpConfigSet:   {"config_set", false, kindNone},
}

// growsOps are the write ops that may add data: over the daemon's
// --max-memory they are refused with CodeOutOfMemory (a cache table
// evicts instead), while every other op goes on, as Redis's "denyoom"
// commands. An op that may add data is listed here when it is added to
// opTable.
var growsOps = [256]bool{
	OpCreateDict: true, OpCreateList: true, OpBatch: true,
	OpDSet: true, OpDSetDefault: true, OpDUpdate: true, OpDIncr: true, OpDCAS: true,
	OpLSet: true, OpLAppend: true, OpLExtend: true, OpLInsert: true, OpLSetSlice: true,
	OpLAppendLeft: true, OpLExtendLeft: true,
}

// journalOnly are the ops only the daemon writes, to its log: a client
// that sends one gets CodeBadRequest.
var journalOnly = [256]bool{OpTimed: true, OpDRemove: true}

// info returns o's entry; the zero entry for a number no op has.
func (o Op) info() opInfo {
	if int(o) < len(opTable) {
		return opTable[o]
	}
	return opInfo{}
}

// String returns the op's protocol name, e.g. "dget", or op_N for a
// number no op has.
func (o Op) String() string {
	if i := o.info(); i.name != "" {
		return i.name
	}
	return fmt.Sprintf("op_%d", uint16(o))
}

// Known reports whether o is an operation defined by this protocol version.
func (o Op) Known() bool { return o.info().name != "" }

// IsWrite reports whether o may change data (and so is logged for durability).
func (o Op) IsWrite() bool { return o.info().write }

// Grows reports whether o may add data (refused over --max-memory). A
// batch grows if one of its ops does.
func (o Op) Grows() bool { return int(o) < len(growsOps) && growsOps[o] }

// JournalOnly reports whether o is written only by the daemon to its log
// (timed, dremove) and refused from clients.
func (o Op) JournalOnly() bool { return int(o) < len(journalOnly) && journalOnly[o] }

// IsDict and IsList report which table kind an op addresses.
func (o Op) IsDict() bool { return o.info().kind == kindDict }
func (o Op) IsList() bool { return o.info().kind == kindList }

// IsBlocking reports whether o may wait for data (lbpop, lbmove): on a
// push connection its reply may come after replies to later requests.
func (o Op) IsBlocking() bool { return int(o) < len(blockingOps) && blockingOps[o] }

// Ops returns every defined op in numeric order.
func Ops() []Op {
	var out []Op
	for o := range opTable {
		if opTable[o].name != "" {
			out = append(out, Op(o))
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
