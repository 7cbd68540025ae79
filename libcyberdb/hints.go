package libcyberdb

import (
	"errors"
	"regexp"
	"strings"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// The daemon's messages give the way out in the protocol's terms ("create
// it with create_dict or create_list"), which a Go programmer has never
// seen. The typed API (handles, Client and Conn methods, batches) rewrites
// those hints into this package's names; Do, the raw API, returns the
// daemon's message as it was sent. Only the hint phrases are rewritten, by
// exact match: a message worded otherwise is left as it is, so this
// depends on the wording for looks only, never for behaviour (PROTOCOL.md
// section 7: messages are for people).

// goMethods names the method of this package that sends each op.
var goMethods = map[wire.Op]string{
	wire.OpPing: "Client.Ping", wire.OpInfo: "Client.Info", wire.OpSave: "Client.Save",
	wire.OpTables: "Client.Tables", wire.OpCreateDict: "Client.CreateDict", wire.OpCreateList: "Client.CreateList",
	wire.OpExists: "Client.Exists", wire.OpDrop: "Client.Drop", wire.OpLen: "Len", wire.OpBatch: "Batch.Exec",

	wire.OpDGet: "Dict.Get", wire.OpDSet: "Dict.Set", wire.OpDDel: "Dict.Delete", wire.OpDHas: "Dict.Has",
	wire.OpDLen: "Dict.Len", wire.OpDKeys: "Dict.Keys", wire.OpDValues: "Dict.Values", wire.OpDItems: "Dict.Items",
	wire.OpDPop: "Dict.Pop", wire.OpDPopItem: "Dict.PopItem", wire.OpDSetDefault: "Dict.SetDefault",
	wire.OpDUpdate: "Dict.Update", wire.OpDClear: "Dict.Clear", wire.OpDToDict: "Dict.Map", wire.OpDIncr: "Dict.Incr",
	wire.OpDCAS: "Dict.CompareAndSwap", wire.OpDScan: "Dict.Scan",
	wire.OpDExpire: "Dict.Expire", wire.OpDPersist: "Dict.Persist", wire.OpDTTL: "Dict.TTL", wire.OpDGetEx: "Dict.GetEx",
	wire.OpDDelIfEq: "Dict.DeleteIfEqual", wire.OpExpire: "Client.ExpireTable", wire.OpTTL: "Client.TableTTL",

	wire.OpLGet: "List.At", wire.OpLSet: "List.SetAt", wire.OpLDel: "List.DeleteAt", wire.OpLSlice: "List.Slice",
	wire.OpLDelSlice: "List.DeleteSlice", wire.OpLAppend: "List.Append", wire.OpLExtend: "List.Extend",
	wire.OpLInsert: "List.Insert", wire.OpLPop: "List.Pop", wire.OpLRemove: "List.Remove", wire.OpLCount: "List.Count",
	wire.OpLIndex: "List.IndexOf", wire.OpLReverse: "List.Reverse", wire.OpLSort: "List.Sort", wire.OpLClear: "List.Clear",
	wire.OpLToList: "List.Values", wire.OpLLen: "List.Len", wire.OpLRange: "List.Scan", wire.OpLSetSlice: "List.SetSlice",
	wire.OpLContains: "List.Contains",

	wire.OpLAppendLeft: "List.AppendLeft", wire.OpLPopLeft: "List.PopLeft", wire.OpLExtendLeft: "List.ExtendLeft",
	wire.OpLRotate: "List.Rotate", wire.OpLMove: "List.Move", wire.OpLBPop: "List.PopWait", wire.OpLBMove: "List.MoveWait",
	wire.OpGuard: "Batch guards", wire.OpCancel: "a cancelled context",

	wire.OpPublish: "Client.Publish", wire.OpSubscribe: "Client.Subscribe", wire.OpPSubscribe: "Client.PSubscribe",
	wire.OpUnsubscribe: "ending a Subscribe or Watch loop", wire.OpWatch: "Dict.Watch", wire.OpTracking: "NewCachedDict",

	wire.OpSlowLog: "Client.SlowLog", wire.OpLatency: "Client.Latency", wire.OpMonitor: "Client.Monitor",
	wire.OpClients: "Client.Clients", wire.OpKillClient: "Client.KillClient", wire.OpConfigGet: "Client.Config",
	wire.OpConfigSet: "Client.SetConfig",
}

// opsByName maps the protocol's op names to ops.
var opsByName = func() map[string]wire.Op {
	m := map[string]wire.Op{}
	for _, op := range wire.Ops() {
		m[op.String()] = op
	}
	return m
}()

// wrongKindHint is the end of the daemon's wrong_kind message: "table "q"
// is a list; dget needs a dict".
var wrongKindHint = regexp.MustCompile(`; ([a-z_]+) needs a (dict|list)$`)

// goHints returns err with the hints of a daemon's message in Go terms.
func goHints(err error) error {
	var we *wire.Error
	if !errors.As(err, &we) {
		return err
	}
	msg := strings.Replace(we.Message, "create it with create_dict or create_list",
		"create it with Client.CreateDict or Client.CreateList (with libcyberdb.IfNotExists() where several processes may)", 1)
	msg = strings.Replace(msg, "read the table in pages (dscan, lrange)", "read the table in pages (Dict.Scan, List.Scan)", 1)
	if m := wrongKindHint.FindStringSubmatchIndex(msg); m != nil {
		if name, ok := goMethods[opsByName[msg[m[2]:m[3]]]]; ok {
			handle := "NewDict"
			if msg[m[4]:m[5]] == "dict" {
				handle = "NewList"
			}
			msg = msg[:m[0]] + "; " + name + " needs a " + msg[m[4]:m[5]] + " (open this table with " + handle + ")"
		}
	}
	if msg == we.Message {
		return err
	}
	return &wire.Error{Code: we.Code, Message: msg}
}
