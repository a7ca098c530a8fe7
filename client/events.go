package client

import (
	"bufio"
	"errors"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/breakwater-dev/breakwater/client/internal/retry"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// Backoff of the event stream's reconnects: exponential from
// eventsMinBackoff to eventsMaxBackoff, with jitter, and back to the
// minimum after a stream that stayed up for eventsStable.
const (
	eventsMinBackoff = 100 * time.Millisecond
	eventsMaxBackoff = 10 * time.Second
	eventsStable     = 10 * time.Second
)

// eventsIdle is how long a stream may stay silent (the server sends a
// heartbeat comment at least every 15 s) before it is taken for dead.
var eventsIdle = 45 * time.Second

// event is the data of an event of /v1/events.
type event = contract.Event

// runEvents holds one /v1/events stream for the whole client until Close,
// reconnecting with exponential backoff and jitter. While it is down,
// cached answers live out their cache_ttl_ms, as they would without it.
func (c *core) runEvents() {
	backoff := eventsMinBackoff
	for c.ctx.Err() == nil {
		start := time.Now()
		err := c.streamEvents()
		if c.ctx.Err() != nil {
			return
		}
		c.kickFaults("") // no stream: faults are polled from now on
		if time.Since(start) >= eventsStable {
			backoff = eventsMinBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		if ra := retryAfter(err); ra > wait {
			wait = ra
		}
		backoff = min(backoff*2, eventsMaxBackoff)
		if retry.Sleep(c.ctx, wait) != nil {
			return
		}
	}
}

// streamEvents reads one stream until it ends.
func (c *core) streamEvents() error {
	resp, err := c.cp.stream(c.ctx, "/v1/events")
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	// A stream that goes silent is dead: the watchdog closes it.
	var alive atomic.Bool
	watchdog := time.AfterFunc(eventsIdle, func() { resp.Body.Close() })
	defer watchdog.Stop()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// Reset the watchdog from the reader's progress without
		// touching the timer on every line.
		t := time.NewTicker(eventsIdle / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if !alive.Swap(false) {
					continue
				}
				if !watchdog.Reset(eventsIdle) {
					return // fired: the stream is being closed
				}
			}
		}
	}()

	// Events may have been missed while no stream was up: every cached
	// answer is stale, before the stream counts as up.
	c.onStale()
	c.eventsEpoch.Add(1)
	c.eventsUp.Store(true)
	defer c.eventsUp.Store(false)

	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var name string
	var data strings.Builder
	for sc.Scan() {
		alive.Store(true)
		line := sc.Text()
		switch {
		case line == "":
			if name != "" && data.Len() > 0 {
				c.onEvent(name, data.String())
			}
			name = ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
			// a comment: the heartbeat
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				name = value
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(value)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("breakwater: event stream ended")
}
