package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Faults for drills. An operator sets a fault for a dependency on the
// control plane (PUT /v1/faults/{name}); every client that calls that
// dependency through a Transport (or a Breaker whose ApplyFaults is on)
// then aborts a share of its calls with a status, without sending them,
// and delays a share of them. An aborted call counts as a failure of the
// dependency, so the drill exercises the breaker as an outage would. See
// docs/drills.md.
//
// A client learns faults once it first could apply one: it fetches
// GET /v1/faults then, the fault an event names (fault.config,
// fault.deleted) at once, the list again whenever its event stream
// (re)connects or drops and at a fault's end, and, while no stream is up,
// every cache_ttl_ms (the least of its breakers', 1 s by default).

// faultJSON is a fault as GET /v1/faults lists it.
type faultJSON struct {
	Name         string    `json:"name"`
	AbortPercent float64   `json:"abort_percent"`
	AbortStatus  int       `json:"abort_status"`
	DelayPercent float64   `json:"delay_percent"`
	DelayMS      int64     `json:"delay_ms"`
	Reason       string    `json:"reason"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// ErrFaultInjected matches the error of a call that a drill's fault
// aborted: it never reached the dependency. The error is a *FaultError.
var ErrFaultInjected = errors.New("breakwater: call aborted by a drill's fault")

// FaultError is a call aborted by a fault an operator set for a drill.
type FaultError struct {
	// Name is the dependency's name; Status is the fault's abort_status;
	// Reason is the operator's.
	Name   string
	Status int
	Reason string
}

func (e *FaultError) Error() string {
	return fmt.Sprintf("breakwater: drill on %s: call aborted with %d (%s)", e.Name, e.Status, e.Reason)
}

// Is makes errors.Is(err, ErrFaultInjected) true.
func (e *FaultError) Is(target error) bool { return target == ErrFaultInjected }

// FaultHeader is set on the responses a Transport makes up for aborted
// calls, with the dependency's name.
const FaultHeader = "Breakwater-Fault"

// fault returns the fault in force for dependency name, or nil. The first
// call starts the client's learning of faults.
func (c *core) fault(name string) *activeFault {
	if !c.faultTab.started.Load() {
		c.startFaults()
	}
	m := c.faultTab.faults.Load()
	if m == nil {
		return nil
	}
	f := (*m)[name]
	if f == nil || c.clock.unixNano() >= f.expires {
		return nil
	}
	return f
}

func (c *core) startFaults() {
	if !c.faultTab.started.CompareAndSwap(false, true) {
		return
	}
	c.goBackground(c.runFaults)
}

// kickFaults asks for the fault of name to be fetched now, or for all of
// them when name is "".
func (c *core) kickFaults(name string) {
	ft := &c.faultTab
	if !ft.started.Load() {
		return
	}
	ft.mu.Lock()
	if name == "" {
		ft.full = true
	} else {
		if ft.names == nil {
			ft.names = map[string]struct{}{}
		}
		ft.names[name] = struct{}{}
	}
	ft.mu.Unlock()
	select {
	case c.faultTab.kick <- struct{}{}:
	default:
	}
}

// runFaults keeps the fault table current until Close: it fetches when
// kicked (an event names a fault; a stream connected or went down) and at
// the earliest end of a fault; while no event stream is up, also every
// faultPollInterval. All fetches run here, one after the other, so a later
// fetch always wins.
func (c *core) runFaults() {
	ft := &c.faultTab
	ft.mu.Lock()
	ft.full = true
	ft.mu.Unlock()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-ft.kick:
		case <-timer.C:
			ft.mu.Lock()
			ft.full = true
			ft.mu.Unlock()
		}
		ft.mu.Lock()
		full, names := ft.full, ft.names
		ft.full, ft.names = false, nil
		ft.mu.Unlock()
		c.fetchFaults(full, names)
		wait := faultsIdlePoll
		if !c.eventsUp.Load() {
			wait = c.faultPoll()
		}
		if m := ft.faults.Load(); m != nil {
			now := time.Now().UnixNano()
			for _, f := range *m {
				if d := time.Duration(f.expires-now) + time.Millisecond; d > 0 && d < wait {
					wait = d
				}
			}
		}
		timer.Reset(wait)
	}
}

// faultsIdlePoll is how often faults are fetched while an event stream is
// up, in case an event was lost.
const faultsIdlePoll = time.Minute

// fetchFaults updates the table: with full, from GET /v1/faults; then
// each of names from GET /v1/faults/{name}. The list is read from an index
// the control plane writes just after a fault (and after its event), so a
// fault held but missing from the list is asked for by name before it is
// dropped. A control plane without faults (404 or 403 on the list) has
// none. What cannot be fetched stays as it was, until the next poll.
func (c *core) fetchFaults(full bool, names map[string]struct{}) {
	ctx, cancel := c.requestCtx()
	defer cancel()
	m := map[string]*activeFault{}
	if old := c.faultTab.faults.Load(); old != nil {
		maps.Copy(m, *old)
	}
	if full {
		var v struct {
			Faults []faultJSON `json:"faults"`
		}
		_, err := c.cp.do(ctx, http.MethodGet, "/v1/faults", "", nil, &v)
		var se *StatusError
		if errors.As(err, &se) && (se.Status == http.StatusNotFound || se.Status == http.StatusForbidden) {
			err, v.Faults = nil, nil
		}
		if err == nil {
			listed := make(map[string]*activeFault, len(v.Faults))
			for _, f := range v.Faults {
				listed[f.Name] = f.active()
			}
			for name := range m {
				if listed[name] == nil {
					if names == nil {
						names = map[string]struct{}{}
					}
					names[name] = struct{}{}
				}
			}
			for name, f := range listed {
				m[name] = f
			}
		}
	}
	for name := range names {
		var f faultJSON
		_, err := c.cp.do(ctx, http.MethodGet, "/v1/faults/"+url.PathEscape(name), "", nil, &f)
		var se *StatusError
		switch {
		case err == nil:
			m[name] = f.active()
		case errors.As(err, &se) && (se.Status == http.StatusNotFound || se.Status == http.StatusForbidden):
			delete(m, name)
		}
	}
	c.faultTab.faults.Store(&m)
}

func (f faultJSON) active() *activeFault {
	return &activeFault{abortPercent: f.AbortPercent, abortStatus: f.AbortStatus, delayPercent: f.DelayPercent,
		delay: time.Duration(f.DelayMS) * time.Millisecond, reason: f.Reason, expires: f.ExpiresAt.UnixNano()}
}

// roll decides what a fault does to one call: how long it waits first,
// and whether it is aborted.
func (f *activeFault) roll() (delay time.Duration, abort bool) {
	if f.delayPercent > 0 && rand.Float64()*100 < f.delayPercent {
		delay = f.delay
	}
	return delay, f.abortPercent > 0 && rand.Float64()*100 < f.abortPercent
}

// faultTransport applies a fault to the requests it sends through base.
type faultTransport struct {
	base    http.RoundTripper
	name    string
	fault   *activeFault
	aborted bool // RoundTrip answered the request itself
}

// RoundTrip waits the fault's delay (or until the request's context
// ends), then answers an aborted request itself or sends it.
func (ft *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	delay, abort := ft.fault.roll()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return nil, context.Cause(req.Context())
		}
	}
	if !abort {
		return ft.base.RoundTrip(req)
	}
	ft.aborted = true
	if req.Body != nil {
		req.Body.Close() // a RoundTripper closes the body, even on error
	}
	body := []byte(`{"type":"about:blank","title":` + strconv.Quote(http.StatusText(ft.fault.abortStatus)) +
		`,"status":` + strconv.Itoa(ft.fault.abortStatus) + `,"detail":` +
		strconv.Quote("drill on "+ft.name+": call aborted by a fault ("+ft.fault.reason+")") + "}")
	h := http.Header{}
	h.Set("Content-Type", "application/problem+json")
	h.Set(FaultHeader, ft.name)
	return &http.Response{
		Status:        strconv.Itoa(ft.fault.abortStatus) + " " + http.StatusText(ft.fault.abortStatus),
		StatusCode:    ft.fault.abortStatus,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
}
