package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// values appends the VALUE arguments vs, each read by value, to args.
func (e *env) values(args []any, vs []string) ([]any, error) {
	for _, s := range vs {
		v, err := e.value(s)
		if err != nil {
			return nil, err
		}
		args = append(args, v)
	}
	return args, nil
}

// value reads a VALUE argument: as arg does, or, for "-", from stdin (as
// arg reads its text; bytes that are not UTF-8 make a byte string).
func (e *env) value(s string) (any, error) {
	if s != "-" {
		return e.arg(s), nil
	}
	b, err := e.readStdin()
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return b, nil
	}
	return e.arg(string(b)), nil
}

// jsonValue reads an argument that is JSON by definition (create's
// content, extend's JSON_ARRAY, ...), or for "-" JSON from stdin.
func (e *env) jsonValue(what, s string) (any, error) {
	text := s
	if s == "-" {
		b, err := e.readStdin()
		if err != nil {
			return nil, err
		}
		text = string(b)
	}
	v, err := parseJSON(text)
	if err != nil {
		return nil, usagef("%s %s is not JSON: %v", what, shortArg(text), err)
	}
	return v, nil
}

// readStdin reads the whole of stdin, once per command: the value of a
// "-" argument.
func (e *env) readStdin() ([]byte, error) {
	switch {
	case e.stdin == nil:
		return nil, usagef(`"-" reads a value from stdin, which carries the commands here; write the value itself, or the JSON text '"-"' for a dash`)
	case e.stdinUsed:
		return nil, usagef(`only one argument can be "-": stdin holds one value`)
	}
	e.stdinUsed = true
	b, err := io.ReadAll(e.stdin)
	if err != nil {
		return nil, fmt.Errorf("reading the value from stdin: %w", err)
	}
	return b, nil
}

// arg reads a KEY or VALUE from the command line: with -S as the text
// typed; otherwise as JSON when it parses as JSON, else as that text, with
// a warning on stderr when it looks like JSON that went wrong (it starts
// with {, [ or "), since the user most likely meant JSON.
func (e *env) arg(s string) any {
	if e.text {
		return s
	}
	v, err := parseJSON(s)
	if err == nil {
		return v
	}
	if t := strings.TrimLeft(s, " \t\r\n"); t != "" && strings.ContainsRune(`{["`, rune(t[0])) {
		fmt.Fprintf(e.stderr, "cyberdb: warning: %s is not valid JSON (%v); it is used as the text string %s. "+
			"Fix the JSON, or use -S (--string) to read arguments as text without this warning.\n", shortArg(s), err, shortArg(s))
	}
	return s
}

// shortArg quotes s for a message, shortened.
func shortArg(s string) string {
	if len(s) > 60 {
		cut := 60
		for cut > 0 && s[cut]&0xc0 == 0x80 {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

// parseJSON reads s as one JSON value. JSON integers stay integers (of
// any size); other numbers are floats.
func parseJSON(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("more after the value") // trailing garbage: "1 2"
	}
	return fromJSON(v), nil
}

func fromJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		if b, ok := new(big.Int).SetString(string(x), 10); ok {
			return b
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case []any:
		for i := range x {
			x[i] = fromJSON(x[i])
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = fromJSON(x[k])
		}
		return x
	}
	return v
}

// parseInt reads an index or count argument.
func parseInt(name, s string) (int, error) {
	i, err := strconv.Atoi(s)
	if err != nil {
		return 0, usagef("%s %q: want an integer", name, s)
	}
	return i, nil
}

// print prints one CBOR value on its own line: as JSON when JSON can show
// it exactly, else in CBOR diagnostic notation; with --raw, text as it is.
func (e *env) print(raw []byte) error {
	if e.raw {
		if t, ok := wire.ItemText(raw); ok {
			_, err := io.WriteString(e.stdout, t+"\n")
			return err
		}
	}
	return printValue(e.stdout, raw)
}

// printValue prints one CBOR value on its own line: as JSON when JSON can
// show it exactly, else in CBOR diagnostic notation.
func printValue(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if !appendJSON(&b, raw) {
		b.Reset()
		b.WriteString(wire.Diagnose(raw))
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// appendJSON writes raw as JSON, keeping map order, and reports whether
// JSON can show it: byte strings, non-text map keys, tags other than
// bignums, undefined and non-finite floats cannot.
func appendJSON(b *bytes.Buffer, raw []byte) bool {
	if len(raw) == 0 {
		return false
	}
	switch raw[0] >> 5 {
	case 0, 1:
		var n big.Int
		if wire.Unmarshal(raw, &n) != nil {
			return false
		}
		b.WriteString(n.String())
		return true
	case 2:
		return false
	case 3:
		var s string
		if wire.Unmarshal(raw, &s) != nil {
			return false
		}
		writeJSONString(b, s)
		return true
	case 4:
		items, err := wire.SplitArray(raw)
		if err != nil {
			return false
		}
		b.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				b.WriteByte(',')
			}
			if !appendJSON(b, it) {
				return false
			}
		}
		b.WriteByte(']')
		return true
	case 5:
		b.WriteByte('{')
		first := true
		ok := true
		err := wire.Pairs(raw, func(k, v wire.Raw) error {
			var key string
			if len(k) == 0 || k[0]>>5 != 3 || wire.Unmarshal(k, &key) != nil {
				ok = false
				return errStop
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			writeJSONString(b, key)
			b.WriteByte(':')
			if !appendJSON(b, v) {
				ok = false
				return errStop
			}
			return nil
		})
		if err != nil || !ok {
			return false
		}
		b.WriteByte('}')
		return true
	case 6:
		if raw[0] == 0xc2 || raw[0] == 0xc3 { // bignums
			var n big.Int
			if wire.Unmarshal(raw, &n) != nil {
				return false
			}
			b.WriteString(n.String())
			return true
		}
		return false
	}
	switch raw[0] {
	case 0xf4:
		b.WriteString("false")
		return true
	case 0xf5:
		b.WriteString("true")
		return true
	case 0xf6:
		b.WriteString("null")
		return true
	case 0xf9, 0xfa, 0xfb:
		var f float64
		if wire.Unmarshal(raw, &f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if !strings.ContainsAny(s, ".en") {
			s += ".0" // keep it a float: 1.0 and 1 are different values
		}
		b.WriteString(s)
		return true
	}
	return false
}

var errStop = fmt.Errorf("stop")

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode's newline
}
