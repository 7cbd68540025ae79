package wire

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// TestHotPathsDoNotAllocate keeps the claim of the README ("the daemon's
// hot path allocates nothing for a get") true for wire's part of it:
// decoding a get or a set, putting a key or a short value in canonical
// form, and reading or splitting pipelined frames. A change that makes one of these
// allocate fails here, not months later in a profile.
func TestHotPathsDoNotAllocate(t *testing.T) {
	bodies := benchBodies(t)
	for _, name := range []string{"get", "set"} {
		body := bodies[name]
		items := make([]Raw, 0, 8)
		allocs := testing.AllocsPerRun(100, func() { items = decodeAsDaemon(t, body, items) })
		if allocs != 0 {
			t.Errorf("decoding a %s request: %v allocations, want 0", name, allocs)
		}
	}

	for _, v := range []any{strings.Repeat("v", 32), 123456789, -7, []byte("bytes"), true, nil} {
		raw := mustMarshal(t, v)
		if allocs := testing.AllocsPerRun(100, func() {
			if _, err := Canonical(raw); err != nil {
				t.Fatal(err)
			}
		}); allocs != 0 {
			t.Errorf("Canonical(%s): %v allocations, want 0", Diagnose(raw), allocs)
		}
	}

	var stream []byte
	for range 16 {
		stream = AppendReply(stream, 7, mustMarshal(t, strings.Repeat("v", 32)))
	}
	src := bytes.NewReader(stream)
	br := bufio.NewReaderSize(src, 64<<10)
	buf := make([]byte, 0, 512)
	if allocs := testing.AllocsPerRun(100, func() {
		src.Reset(stream)
		br.Reset(src)
		for range 16 {
			body, err := ReadFrame(br, buf, DefaultMaxFrame)
			if err != nil {
				t.Fatal(err)
			}
			buf = body[:0]
		}
	}); allocs != 0 {
		t.Errorf("ReadFrame: %v allocations per 16 frames, want 0", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		for rest := stream; len(rest) > 0; {
			body, r, err := SplitFrame(rest, DefaultMaxFrame)
			if err != nil || body == nil {
				t.Fatal(err)
			}
			rest = r
		}
	}); allocs != 0 {
		t.Errorf("SplitFrame: %v allocations per 16 frames, want 0", allocs)
	}
}
