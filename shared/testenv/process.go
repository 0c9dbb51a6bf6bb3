package testenv

import (
	"fmt"
	"sync"
)

// outputLimit is how much of an emulator's output is kept for error
// messages: the last 64 KiB hold the start-up banner and the last errors,
// while the Pub/Sub emulator's log of every HTTP request cannot grow without
// bound.
const outputLimit = 64 << 10

// process is a running emulator.
type process struct {
	pgid   int           // Process group of the emulator and its watchdog.
	out    *tailBuffer   // The emulator's stdout and stderr.
	exited chan struct{} // Closed when the launcher has exited.
	// waitErr is the launcher's exit status, set before exited is closed.
	waitErr error
	// platform holds what the platform's stop needs.
	platform platformProcess
}

// output returns the end of what the emulator wrote.
func (p *process) output() string {
	return p.out.String()
}

// tailBuffer is an io.Writer that keeps the last outputLimit bytes written
// to it.
type tailBuffer struct {
	mu      sync.Mutex
	buf     []byte
	dropped int
}

// Write appends b, dropping the oldest bytes beyond outputLimit.
func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - outputLimit; over > 0 {
		b.dropped += over
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// String returns the bytes kept, saying how many were dropped before them.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		return fmt.Sprintf("[%d earlier bytes dropped]\n%s", b.dropped, b.buf)
	}
	return string(b.buf)
}
