package main

// Golden protocol vectors: testdata/protocol/*.json, replayed against the
// real daemon. testdata/protocol/README.md describes the format.
//
//	go test ./cyberdbd -run Vectors                   # replay, strict
//	go test ./cyberdbd -run Vectors -update-vectors   # re-record replies and diagnostic notation
//
// With -update-vectors a step may be authored with only "request_diag": the
// request bytes are then encoded from it (see encodeDiag) and stored as
// "request". After that, "request" is the source of truth.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
	"github.com/fxamacker/cbor/v2"
)

var updateVectors = flag.Bool("update-vectors", false,
	"rewrite the expected replies and diagnostic notation of testdata/protocol/*.json from the daemon "+
		"(and encode \"request\" from \"request_diag\" where \"request\" is empty)")

const vectorDir = "../testdata/protocol"

// vdiagMode is wire.Diagnose's notation without its 32-level nesting cap,
// so that the vectors at the nesting limit still read as CBOR.
var vdiagMode = func() cbor.DiagMode {
	dm, err := cbor.DiagOptions{MaxNestedLevels: 1024, MaxArrayElements: 1 << 24, MaxMapPairs: 1 << 24}.DiagMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// diag returns the CBOR diagnostic notation of b, or "<malformed CBOR>".
func diag(b []byte) string {
	s, err := vdiagMode.Diagnose(b)
	if err != nil {
		return "<malformed CBOR>"
	}
	return s
}

// notYetCoverable lists the error codes no vector can trigger yet, and why.
// testdata/protocol/README.md repeats this list; keep the two in step.
var notYetCoverable = map[wire.Code]string{
	wire.CodeIO:        "needs a failing disk: cyberdbd/internal/persist's TestDiskErrorRefusesWrites covers it",
	wire.CodeInternal:  "is a server bug by definition; no correct request triggers it",
	wire.CodeForbidden: "needs peer checks (uid/gid or address allowlists), which a later issue adds",
}

type vectorFile struct {
	Description string   `json:"description"`
	Flags       []string `json:"flags,omitempty"`
	// TCP serves the file on a TCP listener on 127.0.0.1 (plaintext,
	// --tcp-insecure, so the bytes are the protocol's) whose password is
	// vectorPassword, instead of the Unix socket: see tcp_test.go.
	TCP   bool         `json:"tcp,omitempty"`
	Steps []vectorStep `json:"steps"`
}

type vectorStep struct {
	Note             string `json:"note"`
	Conn             int    `json:"conn,omitempty"`
	SleepMS          int    `json:"sleep_ms,omitempty"`
	Signal           string `json:"signal,omitempty"`
	Request          string `json:"request,omitempty"`
	Raw              string `json:"raw,omitempty"`
	RequestDiag      string `json:"request_diag,omitempty"`
	NoReply          bool   `json:"no_reply,omitempty"`
	AwaitConnections *int   `json:"await_connections,omitempty"`
	Reply            string `json:"reply,omitempty"`
	ReplyDiag        string `json:"reply_diag,omitempty"`
	Match            string `json:"match,omitempty"`
	Closed           bool   `json:"closed,omitempty"`
}

func vectorFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no vector files in %s", vectorDir)
	}
	slices.Sort(files)
	return files
}

func loadVectors(t *testing.T, path string) *vectorFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var vf vectorFile
	if err := dec.Decode(&vf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &vf
}

func writeVectors(t *testing.T, path string, vf *vectorFile) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(vf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func decodeHex(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("malformed hex %q: %v", s, err)
	}
	return b, nil
}

// checkStep validates a step's shape before anything runs. In update mode
// the reply fields may still be empty, and request may be encoded from
// request_diag.
func checkStep(st *vectorStep, update bool) error {
	if st.Note == "" {
		return errors.New("missing note")
	}
	if st.Conn < 0 {
		return fmt.Errorf("negative conn %d", st.Conn)
	}
	if st.Request != "" && st.Raw != "" {
		return errors.New("both request and raw")
	}
	switch st.Match {
	case "", "exact", "code":
	default:
		return fmt.Errorf("match %q: want exact or code", st.Match)
	}
	switch st.Signal {
	case "", "SIGTERM":
	default:
		return fmt.Errorf("signal %q: only SIGTERM is supported", st.Signal)
	}
	if update && st.Request == "" && st.Raw == "" && st.RequestDiag != "" {
		b, err := encodeDiag(st.RequestDiag)
		if err != nil {
			return fmt.Errorf("request_diag %q: %v", st.RequestDiag, err)
		}
		st.Request = hex.EncodeToString(b)
	}
	sends := st.Request != "" || st.Raw != ""
	if !sends && st.RequestDiag != "" {
		return errors.New("request_diag without request or raw")
	}
	if st.Request != "" {
		b, err := decodeHex(st.Request)
		if err != nil {
			return fmt.Errorf("request: %v", err)
		}
		if len(b) == 0 {
			return errors.New("empty request: use raw \"00000000\" for an empty frame")
		}
		if !update && st.RequestDiag != diag(b) {
			return fmt.Errorf("request_diag %q does not match the request bytes (%s)", st.RequestDiag, diag(b))
		}
	}
	if st.Raw != "" {
		if _, err := decodeHex(st.Raw); err != nil {
			return fmt.Errorf("raw: %v", err)
		}
	}
	if st.NoReply {
		if !sends || st.Reply != "" || st.ReplyDiag != "" || st.Closed || st.Match != "" || st.AwaitConnections != nil {
			return errors.New("no_reply: the step must send and expect nothing")
		}
		return nil
	}
	if st.AwaitConnections != nil && (st.Request == "" || st.Match != "code") {
		return errors.New("await_connections needs an info request and match \"code\"")
	}
	if update {
		return nil
	}
	if st.Reply == "" {
		return errors.New("missing reply")
	}
	b, err := decodeHex(st.Reply)
	if err != nil {
		return fmt.Errorf("reply: %v", err)
	}
	if st.ReplyDiag != diag(b) {
		return fmt.Errorf("reply_diag %q does not match the reply bytes (%s)", st.ReplyDiag, diag(b))
	}
	if _, err := wire.DecodeReply(b); err != nil {
		return fmt.Errorf("reply is not a reply: %v", err)
	}
	return nil
}

// vconn is one of a file's connections, dialled at its first step.
type vconn struct {
	nc net.Conn
	r  *bufio.Reader
}

func (c *vconn) write(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

func (c *vconn) read() ([]byte, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	return wire.ReadFrame(c.r, nil, 1<<30)
}

func TestVectors(t *testing.T) {
	for _, path := range vectorFiles(t) {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".json"), func(t *testing.T) {
			replayVectors(t, path)
		})
	}
}

func replayVectors(t *testing.T, path string) {
	vf := loadVectors(t, path)
	if vf.Description == "" {
		t.Fatal("missing description")
	}
	if len(vf.Steps) == 0 {
		t.Fatal("no steps")
	}
	for i := range vf.Steps {
		if err := checkStep(&vf.Steps[i], *updateVectors); err != nil {
			t.Fatalf("step %d (%s): %v", i, vf.Steps[i].Note, err)
		}
	}
	flags := vf.Flags
	if vf.TCP {
		flags = append(tcpVectorFlags(t), flags...)
	}
	d := daemontest.Start(t, flags...)
	network, addr := "unix", d.Socket
	if vf.TCP {
		network, addr = "tcp", d.TCPAddr(t)
	}
	conns := map[int]*vconn{}
	for i := range vf.Steps {
		st := &vf.Steps[i]
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("step %d (conn %d, %s): %s", i, st.Conn, st.Note, fmt.Sprintf(format, args...))
		}
		c := conns[st.Conn]
		if c == nil {
			nc, err := net.DialTimeout(network, addr, 5*time.Second)
			if err != nil {
				fail("dial: %v", err)
			}
			t.Cleanup(func() { nc.Close() })
			c = &vconn{nc: nc, r: bufio.NewReader(nc)}
			conns[st.Conn] = c
		}
		if st.SleepMS > 0 {
			time.Sleep(time.Duration(st.SleepMS) * time.Millisecond)
		}
		if st.Signal == "SIGTERM" {
			if err := d.Signal(syscall.SIGTERM); err != nil {
				fail("signal: %v", err)
			}
		}
		var out []byte
		if st.Request != "" {
			body, _ := decodeHex(st.Request)
			out = wire.AppendFrame(nil, body)
		} else if st.Raw != "" {
			out, _ = decodeHex(st.Raw)
		}
		deadline := time.Now().Add(10 * time.Second)
		var got []byte
		for {
			if out != nil {
				if err := c.write(out); err != nil {
					fail("write: %v", err)
				}
			}
			if st.NoReply {
				break
			}
			var err error
			if got, err = c.read(); err != nil {
				fail("read: %v\ndaemon output:\n%s", err, d.Output())
			}
			if st.AwaitConnections == nil || awaitDone(got, *st.AwaitConnections) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if st.NoReply {
			continue
		}
		if *updateVectors {
			st.Reply, st.ReplyDiag = hex.EncodeToString(got), diag(got)
			if st.Request != "" {
				b, _ := decodeHex(st.Request)
				st.RequestDiag = diag(b)
			}
		} else {
			want, _ := decodeHex(st.Reply)
			if st.Match == "code" {
				gr, gerr := wire.DecodeReply(got)
				wr, _ := wire.DecodeReply(want)
				if gerr != nil || gr.ID != wr.ID || gr.Code != wr.Code {
					fail("reply %s\nwant id %d and code %s (%s)", diag(got), wr.ID, wr.Code, st.ReplyDiag)
				}
			} else if !bytes.Equal(got, want) {
				fail("reply mismatch\n got %s\n     %x\nwant %s\n     %x", diag(got), got, st.ReplyDiag, want)
			}
		}
		if st.Closed {
			_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if b, err := c.r.ReadByte(); !errors.Is(err, io.EOF) {
				fail("want the server to close the connection; read %#x, %v", b, err)
			}
		}
	}
	if *updateVectors && !t.Failed() {
		writeVectors(t, path, vf)
	}
}

// awaitDone reports whether reply is an info result whose "connections" is n.
func awaitDone(reply []byte, n int) bool {
	r, err := wire.DecodeReply(reply)
	if err != nil || r.Code != wire.CodeOK {
		return false
	}
	var info map[string]any
	if err := wire.Unmarshal(r.Result, &info); err != nil {
		return false
	}
	v, ok := info["connections"].(uint64)
	return ok && v == uint64(n)
}

// TestVectorsCoverage checks, from the files alone, that the vectors send
// every op of the protocol and see every error code that can be triggered.
func TestVectorsCoverage(t *testing.T) {
	ops := map[wire.Op]bool{}
	codes := map[wire.Code]bool{}
	for _, path := range vectorFiles(t) {
		vf := loadVectors(t, path)
		if len(vf.Steps) == 0 {
			t.Errorf("%s: no steps", path)
		}
		for i := range vf.Steps {
			st := &vf.Steps[i]
			if err := checkStep(st, false); err != nil {
				t.Errorf("%s step %d (%s): %v", path, i, st.Note, err)
				continue
			}
			if st.Request != "" {
				b, _ := decodeHex(st.Request)
				if req, err := wire.DecodeRequest(b); err == nil && req.Op.Known() {
					ops[req.Op] = true
				}
			}
			if st.Reply != "" {
				b, _ := decodeHex(st.Reply)
				if r, err := wire.DecodeReply(b); err == nil && r.Code != wire.CodeOK {
					codes[r.Code] = true
				}
			}
		}
	}
	for _, op := range wire.Ops() {
		if !ops[op] {
			t.Errorf("no vector sends op %d (%s)", op, op)
		}
	}
	for _, code := range wire.Codes() {
		why, skip := notYetCoverable[code]
		switch {
		case skip && codes[code]:
			t.Errorf("code %d (%s) is covered now: remove it from notYetCoverable (%s)", code, code, why)
		case !skip && !codes[code]:
			t.Errorf("no vector expects error code %d (%s)", code, code)
		}
	}
	for code := range codes {
		if !slices.Contains(wire.Codes(), code) {
			t.Errorf("vectors expect code %d, which wire.Codes() does not define", code)
		}
	}
}

// encodeDiag encodes CBOR diagnostic notation, for authoring vectors. It
// knows integers (any size within the CBOR range), floats (NaN, Infinity,
// -Infinity), "text" with JSON escapes, h'hex', [arrays] and {maps} (with
// "_ " after the bracket for indefinite length), true, false, null,
// undefined and tags N(item). Everything is written in preferred
// (shortest) form; map entries are written in the order given. The RFC
// 8949 encoding indicators _0.._3 after an integer, or _1.._3 after a
// float, force a head of 1, 2, 4 or 8 bytes (integers) or a half, single
// or double float, to author non-canonical requests.
func encodeDiag(s string) ([]byte, error) {
	p := &diagParser{s: s}
	out, err := p.item(nil)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("trailing text at offset %d: %q", p.i, p.s[p.i:])
	}
	return out, nil
}

type diagParser struct {
	s string
	i int
}

func (p *diagParser) space() {
	for p.i < len(p.s) && strings.ContainsRune(" \t\n\r", rune(p.s[p.i])) {
		p.i++
	}
}

func (p *diagParser) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

// head appends a head of major type m with argument v; width is the
// forced argument size in bytes (0: shortest; 1, 2, 4, 8).
func head(dst []byte, m byte, v uint64, width int) []byte {
	if width == 0 {
		switch {
		case v < 24:
			return append(dst, m<<5|byte(v))
		case v <= math.MaxUint8:
			width = 1
		case v <= math.MaxUint16:
			width = 2
		case v <= math.MaxUint32:
			width = 4
		default:
			width = 8
		}
	}
	switch width {
	case 1:
		return append(dst, m<<5|24, byte(v))
	case 2:
		return binary.BigEndian.AppendUint16(append(dst, m<<5|25), uint16(v))
	case 4:
		return binary.BigEndian.AppendUint32(append(dst, m<<5|26), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, m<<5|27), v)
}

// indicator reads an optional encoding indicator _0.._3.
func (p *diagParser) indicator() int {
	if p.i+1 < len(p.s) && p.s[p.i] == '_' && p.s[p.i+1] >= '0' && p.s[p.i+1] <= '3' {
		n := int(p.s[p.i+1] - '0')
		p.i += 2
		return 1 + n
	}
	return 0
}

func (p *diagParser) item(dst []byte) ([]byte, error) {
	p.space()
	if p.i >= len(p.s) {
		return nil, p.errorf("unexpected end")
	}
	rest := p.s[p.i:]
	for _, w := range []struct {
		word string
		b    byte
	}{{"true", 0xf5}, {"false", 0xf4}, {"null", 0xf6}, {"undefined", 0xf7}} {
		if strings.HasPrefix(rest, w.word) {
			p.i += len(w.word)
			return append(dst, w.b), nil
		}
	}
	switch c := rest[0]; {
	case c == '[' || c == '{':
		return p.container(dst)
	case c == '"':
		str, err := p.text()
		if err != nil {
			return nil, err
		}
		return append(head(dst, 3, uint64(len(str)), 0), str...), nil
	case c == 'h' && strings.HasPrefix(rest, "h'"):
		end := strings.IndexByte(rest[2:], '\'')
		if end < 0 {
			return nil, p.errorf("unterminated byte string")
		}
		b, err := hex.DecodeString(strings.ReplaceAll(rest[2:2+end], " ", ""))
		if err != nil {
			return nil, p.errorf("byte string: %v", err)
		}
		p.i += 3 + end
		return append(head(dst, 2, uint64(len(b)), 0), b...), nil
	case c == '-' || c == 'N' || c == 'I' || (c >= '0' && c <= '9'):
		return p.number(dst)
	}
	return nil, p.errorf("unexpected %q", rest[0])
}

func (p *diagParser) container(dst []byte) ([]byte, error) {
	isMap := p.s[p.i] == '{'
	closeCh := byte(']')
	if isMap {
		closeCh = '}'
	}
	p.i++
	indef := false
	if strings.HasPrefix(p.s[p.i:], "_ ") || strings.HasPrefix(p.s[p.i:], "_"+string(closeCh)) {
		indef = true
		p.i++
	}
	var body []byte
	n := 0
	for {
		p.space()
		if p.i < len(p.s) && p.s[p.i] == closeCh {
			p.i++
			break
		}
		if n > 0 {
			if p.i >= len(p.s) || p.s[p.i] != ',' {
				return nil, p.errorf("want ',' or %q", closeCh)
			}
			p.i++
		}
		var err error
		if body, err = p.item(body); err != nil {
			return nil, err
		}
		if isMap {
			p.space()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return nil, p.errorf("want ':'")
			}
			p.i++
			if body, err = p.item(body); err != nil {
				return nil, err
			}
		}
		n++
	}
	m := byte(4)
	if isMap {
		m = 5
	}
	if indef {
		dst = append(append(append(dst, m<<5|31), body...), 0xff)
		return dst, nil
	}
	return append(head(dst, m, uint64(n), 0), body...), nil
}

func (p *diagParser) text() (string, error) {
	p.i++ // opening quote
	var sb strings.Builder
	for {
		if p.i >= len(p.s) {
			return "", p.errorf("unterminated text")
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return sb.String(), nil
		case c == '\\' && p.i+1 < len(p.s):
			e := p.s[p.i+1]
			p.i += 2
			switch e {
			case 'n':
				sb.WriteByte('\n')
			case 't':
				sb.WriteByte('\t')
			case 'r':
				sb.WriteByte('\r')
			case '"', '\\', '/':
				sb.WriteByte(e)
			case 'u':
				r, err := p.u16()
				if err != nil {
					return "", err
				}
				if utf16.IsSurrogate(r) && strings.HasPrefix(p.s[p.i:], "\\u") {
					p.i += 2
					r2, err := p.u16()
					if err != nil {
						return "", err
					}
					r = utf16.DecodeRune(r, r2)
				}
				sb.WriteRune(r)
			default:
				return "", p.errorf("unknown escape \\%c", e)
			}
		default:
			sb.WriteByte(c)
			p.i++
		}
	}
}

func (p *diagParser) u16() (rune, error) {
	if p.i+4 > len(p.s) {
		return 0, p.errorf("short \\u escape")
	}
	v, err := strconv.ParseUint(p.s[p.i:p.i+4], 16, 16)
	if err != nil {
		return 0, p.errorf("\\u escape: %v", err)
	}
	p.i += 4
	return rune(v), nil
}

func (p *diagParser) number(dst []byte) ([]byte, error) {
	start := p.i
	for p.i < len(p.s) && strings.ContainsRune("+-.0123456789eEaINfinity", rune(p.s[p.i])) {
		p.i++
	}
	lit := p.s[start:p.i]
	// A tag: N(item).
	if p.i < len(p.s) && p.s[p.i] == '(' {
		tag, err := strconv.ParseUint(lit, 10, 64)
		if err != nil {
			return nil, p.errorf("tag number %q: %v", lit, err)
		}
		p.i++
		dst = head(dst, 6, tag, 0)
		if dst, err = p.item(dst); err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, p.errorf("want ')'")
		}
		p.i++
		return dst, nil
	}
	width := p.indicator()
	isFloat := strings.ContainsAny(lit, ".eEN") || strings.Contains(lit, "Infinity")
	if !isFloat {
		v, ok := new(big.Int).SetString(lit, 10)
		if !ok {
			return nil, p.errorf("bad integer %q", lit)
		}
		m := byte(0)
		if v.Sign() < 0 {
			m = 1
			v.Neg(v).Sub(v, big.NewInt(1)) // -1-n
		}
		if !v.IsUint64() {
			return nil, p.errorf("integer %s is outside the CBOR range", lit)
		}
		if width > 0 {
			width = 1 << (width - 1)
		}
		return head(dst, m, v.Uint64(), width), nil
	}
	var f float64
	switch lit {
	case "NaN":
		f = math.NaN()
	case "Infinity":
		f = math.Inf(1)
	case "-Infinity":
		f = math.Inf(-1)
	default:
		var err error
		if f, err = strconv.ParseFloat(lit, 64); err != nil {
			return nil, p.errorf("bad float %q: %v", lit, err)
		}
	}
	switch width {
	case 0:
		b, err := wire.Marshal(f)
		if err != nil {
			return nil, err
		}
		return append(dst, b...), nil
	case 2:
		return nil, p.errorf("write half floats in hex")
	case 3:
		return binary.BigEndian.AppendUint32(append(dst, 0xfa), math.Float32bits(float32(f))), nil
	case 4:
		return binary.BigEndian.AppendUint64(append(dst, 0xfb), math.Float64bits(f)), nil
	}
	return nil, p.errorf("float encoding indicator _0 is not supported")
}
