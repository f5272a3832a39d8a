package entrypoint

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
)

// logPrefix starts every line the shim prints on stderr in text format, so
// that its lines stand out in container logs.
const logPrefix = "kai-entrypoint: "

// NewLogger returns the shim's logger on w: slog text lines behind
// logPrefix without a timestamp (the container runtime adds one), or JSON
// objects with "logger":"kai-entrypoint".
func NewLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey && format != "json" {
				return slog.Attr{}
			}
			return a
		},
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)).With("logger", "kai-entrypoint")
	}
	return slog.New(slog.NewTextHandler(&prefixWriter{w: w}, opts))
}

// prefixWriter puts logPrefix before every line written through it.
type prefixWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		out.WriteString(logPrefix)
		out.Write(line)
	}
	if _, err := p.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}
