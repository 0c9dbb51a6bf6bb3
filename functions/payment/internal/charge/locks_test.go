package charge

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestOrderLocks(t *testing.T) {
	l := orderLocks{m: make(map[string]*orderLock)}
	ctx := context.Background()
	unlock, err := l.lock(ctx, "o1")
	if err != nil {
		t.Fatal(err)
	}
	// Another order is independent.
	unlock2, err := l.lock(ctx, "o2")
	if err != nil {
		t.Fatalf("lock(o2) while o1 is held = %v", err)
	}
	unlock2()
	// A waiter whose context ends gives up without taking the lock.
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if _, err := l.lock(short, "o1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock(o1) while held, short deadline = %v, want DeadlineExceeded", err)
	}
	// Waiters get the lock one at a time, in turn.
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		inside int
	)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := l.lock(ctx, "o1")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			if inside > 1 {
				t.Error("two holders of one order's lock")
			}
			mu.Unlock()
			mu.Lock()
			inside--
			mu.Unlock()
			u()
		}()
	}
	unlock()
	wg.Wait()
	if len(l.m) != 0 {
		t.Errorf("locks left after every holder and waiter is gone: %v", l.m)
	}
}
