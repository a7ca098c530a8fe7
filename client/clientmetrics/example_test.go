package clientmetrics_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/breakwater-dev/breakwater/client"
	"github.com/breakwater-dev/breakwater/client/clientmetrics"
)

func ExampleNew() {
	endpoint, stop := exampleControlPlane() // holds the breaker "payments"
	defer stop()

	reg := prometheus.NewRegistry() // made in main and served at /metrics
	m := clientmetrics.New(reg)
	c, err := client.New(client.Config{Endpoints: []string{endpoint}, Hooks: m.Hooks()})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	payments := c.Breaker("payments")
	for range 3 {
		_ = payments.Do(context.Background(), func(context.Context) error { return nil })
	}
	printSeries(reg, "breakwater_client_decisions_total")
	// Output:
	// breakwater_client_decisions_total{kind="breaker",name="payments",result="allowed",source="cache"} 2
	// breakwater_client_decisions_total{kind="breaker",name="payments",result="allowed",source="server"} 1
}

func ExampleMetrics_Wrap() {
	// A control plane that is gone: the client decides locally.
	gone := httptest.NewServer(nil)
	gone.Close()

	reg := prometheus.NewRegistry()
	m := clientmetrics.New(reg)
	c, err := client.New(client.Config{
		Endpoints: []string{gone.URL},
		// The metrics, and a hook of our own.
		Hooks: m.Wrap(client.Hooks{
			OnDegraded: func(entered bool) { fmt.Println("degraded:", entered) },
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	err = c.Breaker("payments").Do(context.Background(), func(context.Context) error { return nil })
	fmt.Println("call:", err)
	printSeries(reg, "breakwater_client_degraded", "breakwater_client_degraded_switches_total", "breakwater_client_decisions_total")
	// Output:
	// degraded: true
	// call: <nil>
	// breakwater_client_decisions_total{kind="breaker",name="payments",result="allowed",source="degraded"} 1
	// breakwater_client_degraded 1
	// breakwater_client_degraded_switches_total{direction="enter"} 1
}

// printSeries prints the series of the named metrics in reg whose value
// is not zero, sorted.
func printSeries(reg *prometheus.Registry, names ...string) {
	mfs, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	var lines []string
	for _, mf := range mfs {
		want := false
		for _, n := range names {
			want = want || mf.GetName() == n
		}
		if !want {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			if v == 0 {
				continue
			}
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			line := mf.GetName()
			if len(labels) > 0 {
				line += "{" + strings.Join(labels, ",") + "}"
			}
			lines = append(lines, fmt.Sprintf("%s %v", line, v))
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
}

// exampleControlPlane serves a control plane, the HTTP API over the
// embedded in-memory store, holding the breaker "payments", and returns
// its URL and a func that stops it.
func exampleControlPlane() (string, func()) {
	cp, err := serveControlPlane()
	if err != nil {
		log.Fatal(err)
	}
	if err := cp.putErr("/v1/breakers/payments", map[string]any{}); err != nil {
		log.Fatal(err)
	}
	return cp.URL, cp.stop
}
