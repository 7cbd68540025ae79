package otelcyberdb_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/cyberdbtest"
	"github.com/cyberdb/cyberdb/libcyberdb/otelcyberdb"
)

// TestSpans: a real daemon (cyberdbtest), a Client with the hook, and the
// SDK's in-memory recorder: one span per dial and per call, children of
// the caller's span, with the op, the table, db.system, and the error
// status of a failed call; a missing key is not a failure.
func TestSpans(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	db := cyberdbtest.New(t, cyberdbtest.WithClientOptions(libcyberdb.WithHooks(
		otelcyberdb.Hook(otelcyberdb.WithTracerProvider(tp), otelcyberdb.WithAttributes(attribute.String("shard", "a"))))))
	c := db.Client

	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	if err := c.CreateDict(ctx, "hits", nil); err != nil {
		t.Fatal(err)
	}
	hits := libcyberdb.NewDict[string, int](c, "hits")
	if _, err := hits.Incr(ctx, "home", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := hits.Get(ctx, "missing"); !errors.Is(err, libcyberdb.ErrNotFound) {
		t.Fatal(err)
	}
	if err := c.CreateList(ctx, "hits", nil); !errors.Is(err, libcyberdb.ErrTableExists) {
		t.Fatal(err)
	}
	parent.End()

	spans := sr.Ended()
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = s
	}
	if _, ok := byName["cyberdb.dial"]; !ok {
		t.Errorf("no dial span")
	}
	for _, tc := range []struct {
		name, op  string
		status    codes.Code
		notFound  bool
		hasParent bool
	}{
		{"create_dict hits", "create_dict", codes.Unset, false, true},
		{"dincr hits", "dincr", codes.Unset, false, true},
		{"dget hits", "dget", codes.Unset, true, true},
		{"create_list hits", "create_list", codes.Error, false, true},
	} {
		s, ok := byName[tc.name]
		if !ok {
			t.Errorf("no span %q among %v", tc.name, names(spans))
			continue
		}
		attrs := map[attribute.Key]attribute.Value{}
		for _, a := range s.Attributes() {
			attrs[a.Key] = a.Value
		}
		if attrs["db.system"].AsString() != "cyberdb" || attrs["db.system.name"].AsString() != "cyberdb" ||
			attrs["db.operation.name"].AsString() != tc.op || attrs["db.collection.name"].AsString() != "hits" ||
			attrs["shard"].AsString() != "a" {
			t.Errorf("%s: attributes %v", tc.name, s.Attributes())
		}
		if s.Status().Code != tc.status {
			t.Errorf("%s: status %v, want %v", tc.name, s.Status(), tc.status)
		}
		if attrs["cyberdb.not_found"].AsBool() != tc.notFound {
			t.Errorf("%s: not_found %v", tc.name, attrs["cyberdb.not_found"])
		}
		if s.SpanKind() != trace.SpanKindClient || s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("%s: kind %v, parent %v", tc.name, s.SpanKind(), s.Parent().SpanID())
		}
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}
