// Package syncbuf holds a bytes.Buffer that several goroutines may write and
// read: the tests capture a program's log while it runs.
package syncbuf // import "github.com/defender-ci/otelcol-defender-ci/internal/syncbuf"

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer guarded by a mutex.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
