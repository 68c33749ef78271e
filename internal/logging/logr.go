package logging

import (
	"fmt"

	"github.com/go-logr/logr"
	"go.uber.org/zap"
)

// Logr adapts a zap logger to logr, the interface client-go logs through
// (via klog): the daemon sets it as klog's logger, so Kubernetes client
// messages come out as the daemon's own JSON records instead of klog's
// text on stderr. Only klog's V(0) messages are kept; client-go's verbose
// levels are chatter.
func Logr(z *zap.Logger) logr.Logger {
	return logr.New(&zapSink{z: z.WithOptions(zap.AddCallerSkip(1))})
}

type zapSink struct {
	z *zap.Logger
}

func (s *zapSink) Init(logr.RuntimeInfo) {}

func (s *zapSink) Enabled(level int) bool { return level <= 0 }

func (s *zapSink) Info(level int, msg string, kv ...any) {
	if level > 0 {
		return
	}
	s.z.Info(msg, fields(kv)...)
}

func (s *zapSink) Error(err error, msg string, kv ...any) {
	s.z.Error(msg, append(fields(kv), zap.Error(err))...)
}

func (s *zapSink) WithValues(kv ...any) logr.LogSink {
	return &zapSink{z: s.z.With(fields(kv)...)}
}

func (s *zapSink) WithName(name string) logr.LogSink {
	return &zapSink{z: s.z.Named(name)}
}

// fields turns logr's alternating keys and values into zap fields; a key
// that is not a string, or a key with no value, is kept rather than lost.
func fields(kv []any) []zap.Field {
	out := make([]zap.Field, 0, (len(kv)+1)/2)
	for i := 0; i < len(kv); i += 2 {
		key, ok := kv[i].(string)
		if !ok {
			key = fmt.Sprint(kv[i])
		}
		if i+1 == len(kv) {
			out = append(out, zap.String("logr_key_without_value", key))
			break
		}
		out = append(out, zap.Any(key, kv[i+1]))
	}
	return out
}
