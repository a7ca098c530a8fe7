package faults

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/breakwater-dev/breakwater/client"
)

// load runs an operation in a loop on several goroutines until stopped,
// and counts what came back.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ops    atomic.Int64
	errs   atomic.Int64

	mu     sync.Mutex
	sample []string // the first few errors
}

// runLoad starts workers goroutines calling op, with pause between calls.
// op's error, when not nil and not accepted by ok, is counted as an error
// that reached a caller. op's context never ends: stop lets the calls in
// flight finish, so that every call is counted with its result.
func runLoad(workers int, pause time.Duration, op func(ctx context.Context) error, ok func(error) bool) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				err := op(context.Background())
				l.ops.Add(1)
				if err != nil && (ok == nil || !ok(err)) {
					l.errs.Add(1)
					l.mu.Lock()
					if len(l.sample) < 5 {
						l.sample = append(l.sample, err.Error())
					}
					l.mu.Unlock()
				}
				time.Sleep(pause)
			}
		}()
	}
	return l
}

// stop ends the load and waits for its goroutines.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// errors describes the errors seen, for a failure message.
func (l *load) errors() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d of %d calls failed, first: %q", l.errs.Load(), l.ops.Load(), l.sample)
}

// degradations counts a client's switches into degraded mode.
type degradations struct{ entered, left atomic.Int64 }

func (d *degradations) hooks() client.Hooks {
	return client.Hooks{OnDegraded: func(entered bool) {
		if entered {
			d.entered.Add(1)
		} else {
			d.left.Add(1)
		}
	}}
}

// logLines collects what clients log, for a failure message.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() < 64<<10 {
		l.buf.Write(p)
	}
	return len(p), nil
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logLines) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }
