package systemd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// NewLogHandler returns the daemon's log handler writing to w (stderr) at
// level, which may change while the daemon runs (a reload). When w is the
// journal (systemd sets $JOURNAL_STREAM to its device and inode), each
// line starts with its syslog priority, "<3>" for an error, so that
// `journalctl -p warning` works, and the time is left out because the
// journal records its own.
func NewLogHandler(w *os.File, level slog.Leveler) slog.Handler {
	if !isJournal(w) {
		return slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
	}
	pw := &priorityWriter{w: w}
	return &journalHandler{pw: pw, Handler: slog.NewTextHandler(pw, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	})}
}

// isJournal reports whether f is the stream systemd connected to the
// journal (systemd.exec(5), $JOURNAL_STREAM).
func isJournal(f *os.File) bool {
	js := os.Getenv("JOURNAL_STREAM")
	if js == "" {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return js == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// journalHandler prefixes each record with its syslog priority: the
// TextHandler writes a record in one Write, which priorityWriter prefixes
// with the priority of the record being handled.
type journalHandler struct {
	slog.Handler
	pw *priorityWriter
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.pw.mu.Lock()
	defer h.pw.mu.Unlock()
	h.pw.prefix = syslogPrefix(r.Level)
	return h.Handler.Handle(ctx, r)
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{Handler: h.Handler.WithAttrs(as), pw: h.pw}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{Handler: h.Handler.WithGroup(name), pw: h.pw}
}

type priorityWriter struct {
	// mu guards prefix, and w's writes: journalHandler.Handle holds it
	// around each record. It is taken after any lock of the daemon's (a
	// log line may be written under them) and before none.
	mu     sync.Mutex
	prefix string
	w      io.Writer
}

func (p *priorityWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(append([]byte(p.prefix), b...))
	return max(0, n-len(p.prefix)), err
}

// syslogPrefix is the sd-daemon(3) prefix for a level: <3> error,
// <4> warning, <6> info, <7> debug.
func syslogPrefix(l slog.Level) string {
	p := 7
	switch {
	case l >= slog.LevelError:
		p = 3
	case l >= slog.LevelWarn:
		p = 4
	case l >= slog.LevelInfo:
		p = 6
	}
	return "<" + strconv.Itoa(p) + ">"
}
