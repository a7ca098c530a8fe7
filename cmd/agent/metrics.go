package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/breakwater-dev/breakwater/client"
	"github.com/breakwater-dev/breakwater/client/clientmetrics"
)

// metricsHooks registers the agent's breakwater_client_ metrics on reg and
// returns the SDK hooks that feed them.
func metricsHooks(reg prometheus.Registerer) client.Hooks {
	return clientmetrics.New(reg).Hooks()
}
