package options

import (
	"io"
	"reflect"
)

// A Change is a setting whose value differs between two Options.
type Change struct {
	Setting  string // its flag name, e.g. "log-level"
	From, To string // the values as the flag takes them, e.g. "info"
}

// Changes lists the settings whose values differ from a to b, in the
// order of --help. It compares the typed values of the fields tagged with
// a flag name (an empty list equals none), and prints them as the flags
// take them.
func Changes(a, b *Options) []Change {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	// Binding flags writes the defaults to the fields: bind copies.
	ca, cb := *a, *b
	fa, fb := ca.flagSet(io.Discard), cb.flagSet(io.Discard)
	var out []Change
	for _, f := range reflect.VisibleFields(va.Type()) {
		name := f.Tag.Get("flag")
		if name == "" || equal(va.FieldByIndex(f.Index), vb.FieldByIndex(f.Index)) {
			continue
		}
		out = append(out, Change{Setting: name, From: fa.Lookup(name).Value.String(), To: fb.Lookup(name).Value.String()})
	}
	return out
}

func equal(a, b reflect.Value) bool {
	if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}
