// Package otelcyberdb traces a libcyberdb Client with OpenTelemetry: one
// span per call (each operation of the typed API, each Do, each
// Batch.Exec) and one per attempt to open a connection.
//
//	c, err := libcyberdb.Open(ctx, addr, libcyberdb.WithHooks(otelcyberdb.Hook()))
//
// A call's span is a child of the span in the call's context, named after
// the operation and its table ("dget sessions"), of kind client, with the
// attributes db.system.name (and the older db.system) "cyberdb",
// db.operation.name, db.collection.name (the table) and server.address
// (the socket or host:port). A call that fails records its error and sets
// the span's status to Error; ErrNotFound (a missing key, a cache miss)
// is a result, not a failure, and is recorded only as the attribute
// cyberdb.not_found. Dials are spans named "cyberdb.dial": each attempt,
// from the connect to the daemon's answer to HELLO (TLS and the password
// included), with the error of a dial that failed at any of them.
//
// It is its own Go module, so that programs that do not trace do not
// depend on OpenTelemetry.
package otelcyberdb

import (
	"context"
	"errors"
	"net"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cyberdb/cyberdb/libcyberdb"
)

// ScopeName is the instrumentation scope of the spans.
const ScopeName = "github.com/cyberdb/cyberdb/libcyberdb/otelcyberdb"

// Option configures Hook.
type Option func(*config)

type config struct {
	tp    trace.TracerProvider
	attrs []attribute.KeyValue
}

// WithTracerProvider makes spans with tp instead of the global provider
// (otel.GetTracerProvider, read when Hook is called).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithAttributes adds attributes to every span (the service's instance,
// a shard name).
func WithAttributes(attrs ...attribute.KeyValue) Option {
	return func(c *config) { c.attrs = append(c.attrs, attrs...) }
}

// Hook returns a libcyberdb.Hook that traces calls and dials.
func Hook(opts ...Option) libcyberdb.Hook {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.tp == nil {
		cfg.tp = otel.GetTracerProvider()
	}
	t := &tracer{tr: cfg.tp.Tracer(ScopeName), attrs: cfg.attrs}
	return libcyberdb.Hook{Dial: t.dial, Call: t.call}
}

type tracer struct {
	tr    trace.Tracer
	attrs []attribute.KeyValue
}

var system = []attribute.KeyValue{
	attribute.String("db.system.name", "cyberdb"),
	attribute.String("db.system", "cyberdb"),
}

func (t *tracer) call(next libcyberdb.CallFunc) libcyberdb.CallFunc {
	return func(ctx context.Context, c *libcyberdb.Call) error {
		op, table := c.Op().String(), c.Table()
		name := op
		if table != "" {
			name = op + " " + table
		}
		attrs := make([]attribute.KeyValue, 0, len(system)+len(t.attrs)+2)
		attrs = append(attrs, system...)
		attrs = append(attrs, attribute.String("db.operation.name", op))
		if table != "" {
			attrs = append(attrs, attribute.String("db.collection.name", table))
		}
		attrs = append(attrs, t.attrs...)
		ctx, span := t.tr.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
		defer span.End()
		err := next(ctx, c)
		switch {
		case err == nil:
		case errors.Is(err, libcyberdb.ErrNotFound):
			span.SetAttributes(attribute.Bool("cyberdb.not_found", true))
		default:
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		return err
	}
}

func (t *tracer) dial(next libcyberdb.DialFunc) libcyberdb.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		attrs := make([]attribute.KeyValue, 0, len(system)+len(t.attrs)+2)
		attrs = append(attrs, system...)
		attrs = append(attrs, attribute.String("network.transport", network), attribute.String("server.address", addr))
		attrs = append(attrs, t.attrs...)
		ctx, span := t.tr.Start(ctx, "cyberdb.dial", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
		defer span.End()
		nc, err := next(ctx, network, addr)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		return nc, err
	}
}
