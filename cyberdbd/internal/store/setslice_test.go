package store

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// TestListSetSliceMatchesPython replays testdata/setslice.txt, Python's
// l[start:stop:step] = values for l = [0, 1, 2, 3, 4] over bounds, steps
// (None, positive, negative, 0) and value counts 0 to 3, as printed by
// python3 (testdata/setslice.py). A ValueError is bad_request with
// Python's message, and leaves the list as it was.
func TestListSetSliceMatchesPython(t *testing.T) {
	f, err := os.Open("testdata/setslice.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	arg := func(s string) any {
		if s == "N" {
			return nil
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("bad bound %q", s)
		}
		return n
	}
	sc := bufio.NewScanner(f)
	cases := 0
	for sc.Scan() {
		line := sc.Text()
		lhs, want, ok := strings.Cut(line, " -> ")
		fs := strings.Fields(lhs)
		if !ok || len(fs) != 4 {
			t.Fatalf("bad line %q", line)
		}
		n, _ := strconv.Atoi(fs[3])
		values := []string{"a", "b", "c"}[:n]
		s := New()
		newListTable(t, s, "l", 0, 1, 2, 3, 4)
		args := []any{"l", arg(fs[0]), arg(fs[1]), arg(fs[2]), values}
		if msg, isErr := strings.CutPrefix(want, "ValueError: "); isErr {
			got := fails(t, s, wire.CodeBadRequest, wire.OpLSetSlice, args...)
			if got != msg {
				t.Errorf("%s: message %q, want Python's %q", lhs, got, msg)
			}
			want = "[0, 1, 2, 3, 4]"
		} else {
			expect(t, do(t, s, wire.OpLSetSlice, args...), "null")
		}
		if got := do(t, s, wire.OpLToList, "l"); got != want {
			t.Errorf("l[%s:%s:%s] = %v: got %s, want %s", fs[0], fs[1], fs[2], values, got, want)
		}
		cases++
	}
	if err := sc.Err(); err != nil || cases < 2000 {
		t.Fatalf("read %d cases: %v", cases, err)
	}
}

func TestListSetSlice(t *testing.T) {
	s := New()
	newListTable(t, s, "l", 0, 1, 2, 3, 4)
	// Bytes are tracked through growth, shrinkage and replacement.
	do(t, s, wire.OpLSetSlice, "l", 1, 2, nil, []string{"long string one", "long string two"})
	do(t, s, wire.OpLSetSlice, "l", nil, nil, -2, []string{"x", "y", "z"})
	expect(t, do(t, s, wire.OpLToList, "l"), `[0, "z", "long string two", "y", 3, "x"]`) // python3
	if st, want := s.Stats(), int64(1+2+16+2+1+2); st.Bytes != want || st.Entries != 6 {
		t.Fatalf("stats %+v, want %d bytes", st, want)
	}
	do(t, s, wire.OpLSetSlice, "l", nil, nil, nil, []int{})
	expect(t, do(t, s, wire.OpLToList, "l"), "[]")
	if st := s.Stats(); st.Bytes != 0 || st.Entries != 0 {
		t.Fatalf("stats %+v after l[:] = []", st)
	}
	do(t, s, wire.OpLSetSlice, "l", 0, 0, nil, []any{[]int{1}, map[string]int{"a": 1}})
	expect(t, do(t, s, wire.OpLToList, "l"), `[[1], {"a": 1}]`)
	// Values are canonicalised like any stored value.
	do(t, s, wire.OpLSetSlice, "l", 5, 5, nil, wire.Raw{0x81, 0x18, 0x01})
	expect(t, do(t, s, wire.OpLToList, "l"), `[[1], {"a": 1}, 1]`)

	// Argument errors, each leaving the list as it was.
	for _, args := range [][]any{
		{"l", 0, 1, nil},                // 4 arguments
		{"l", 0, 1, nil, []int{}, 1},    // 6
		{"l", 0, 1, 0, []int{}},         // step 0
		{"l", 0, 1, 0, "ab"},            // step 0 is reported first, as Python does
		{"l", 0, 1, nil, "ab"},          // values not an array
		{"l", 0, 1, nil, map[int]int{}}, // a map is not an array here
		{"l", 0, 1, nil, nil},           // null is not an array
		{"l", 1.5, 2, nil, []int{}},     // bounds are integers
		{"l", true, 2, nil, []int{}},    // not bools
		{"l", 0, uint64(1 << 63), nil, []int{}},
		{"l", 0, 3, 2, []int{1, 2, 3}}, // extended: size 3 into 2
	} {
		fails(t, s, wire.CodeBadRequest, wire.OpLSetSlice, args...)
	}
	expect(t, do(t, s, wire.OpLToList, "l"), `[[1], {"a": 1}, 1]`)
	expect(t, fails(t, s, wire.CodeBadRequest, wire.OpLSetSlice, "l", 0, 1, 0, "ab"), "slice step cannot be zero")
	fails(t, s, wire.CodeNoSuchTable, wire.OpLSetSlice, "nope", 0, 1, nil, []int{})
	newDictTable(t, s, "d")
	fails(t, s, wire.CodeWrongKind, wire.OpLSetSlice, "d", 0, 1, nil, []int{})
}

func TestListContains(t *testing.T) {
	s := New()
	newListTable(t, s, "l", 1, "a", []int{1}, nil, 1.0)
	for _, c := range []struct {
		v    any
		want string
	}{
		{1, "true"}, {1.0, "true"}, {"a", "true"}, {[]int{1}, "true"}, {nil, "true"},
		{2, "false"}, {true, "false"}, {[]byte("a"), "false"}, {[]float64{1}, "false"}, {undef, "false"},
		{wire.Raw{0x18, 0x01}, "true"}, // a non-canonical 1 is 1
	} {
		expect(t, do(t, s, wire.OpLContains, "l", c.v), c.want)
	}
	fails(t, s, wire.CodeBadRequest, wire.OpLContains, "l")
	fails(t, s, wire.CodeBadRequest, wire.OpLContains, "l", 1, 2)
	newDictTable(t, s, "d")
	fails(t, s, wire.CodeWrongKind, wire.OpLContains, "d", 1)
	fails(t, s, wire.CodeNoSuchTable, wire.OpLContains, "nope", 1)
}
