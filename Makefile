# Breakwater. `make run` serves the control plane on the embedded store at
# 127.0.0.1:8080; `make test` runs the whole suite (the real-Redis tests need
# redis-server on PATH: `apt-get install -y redis-server`; the OpenAPI linter
# needs node and npm).

GO ?= go
FUZZTIME ?= 10s
# Pinned, run with `go run` so that nothing is installed by hand.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# The OpenAPI linter, Redocly CLI, pinned in tools/openapi/package-lock.json
# and installed there by `npm ci` (needs node and npm).
REDOCLY := tools/openapi/node_modules/.bin/redocly
REDOCLY_STAMP := tools/openapi/node_modules/.installed

.PHONY: run build test vet lint lint-spec unit fuzz faults bench bench-all demo clean

run:
	$(GO) run ./cmd/controlplane

build:
	$(GO) build -o bin/ ./cmd/...

vet:
	$(GO) vet ./...

lint:
	$(GO) run $(STATICCHECK) ./...

# api/openapi.yaml against Redocly's recommended rules, every warning an
# error; tools/openapi/redocly.yaml says which rules are off and why.
lint-spec: $(REDOCLY_STAMP)
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		$(REDOCLY) lint --config tools/openapi/redocly.yaml api/openapi.yaml

$(REDOCLY_STAMP): tools/openapi/package.json tools/openapi/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "lint-spec needs node (20.19 or later) and npm: apt-get install -y nodejs npm" >&2; exit 1; }
	npm ci --prefix tools/openapi --no-audit --no-fund
	touch $@

# The whole suite under the race detector but the fault suite; then the
# local breaker against the breaker scripts at full length without it
# (single-goroutine, and the detector slows miniredis's Lua tenfold); then
# the fault suite's short form alone and without the detector: it asserts
# the product's time bounds (R1, R2), and the detector's slowdown of the
# test's own clients, or another package's tests on the same cores, would
# be measured as the product's latency. The rate-limit model comparison
# runs at full length in the first pass.
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v '/internal/faults$$')
	$(GO) test -count=1 -run 'LocalBreakerMatchesScripts' ./client/
	$(GO) test -count=1 ./internal/faults/

# A short run of every fuzz target; the seed corpora also run in `unit`.
# Go's fuzz coordinator (1.26) can fail a target with a bare "context
# deadline exceeded" when -fuzztime ends while a worker is busy
# (go.dev/issue/75804, fixed in Go 1.27): such an end, with no failing
# input written to testdata/fuzz, is reported and not failed; any other
# failure fails.
# Each package's test binary is built once, with the fuzzing
# instrumentation (go test -c -fuzz) and no vet (`make vet` ran it), and
# runs each of the package's targets for FUZZTIME from the package's
# directory, with go test's fuzz cache: one build per package instead of
# one per target.
FUZZBIN := bin/fuzz
fuzz:
	@set -e; mkdir -p $(FUZZBIN); cache=$$($(GO) env GOCACHE)/fuzz; \
	for pkg in $$(grep -rlE '^func Fuzz[A-Za-z0-9_]+\(' --include='*_test.go' . | xargs -n1 dirname | sort -u); do \
		ip=$$(cd $$pkg && $(GO) list .); \
		bin=$(CURDIR)/$(FUZZBIN)/$$(echo $$ip | tr / _).test; \
		$(GO) test -c -fuzz . -vet=off -o $$bin $$pkg; \
		for target in $$(grep -hoE '^func Fuzz[A-Za-z0-9_]+\(' $$pkg/*_test.go | sed 's/func //; s/($$//' | sort -u); do \
			echo "fuzz $$target in $$pkg"; \
			log=$(CURDIR)/$(FUZZBIN)/$$target.log; \
			before=$$(ls $$pkg/testdata/fuzz/$$target 2>/dev/null | wc -l); \
			if (cd $$pkg && $$bin -test.run '^$$' -test.fuzz "^$$target$$" -test.fuzztime $(FUZZTIME) -test.fuzzcachedir $$cache/$$ip) >$$log 2>&1; then \
				cat $$log; \
			else \
				cat $$log; \
				after=$$(ls $$pkg/testdata/fuzz/$$target 2>/dev/null | wc -l); \
				if [ "$$after" = "$$before" ] && grep -q '^    context deadline exceeded$$' $$log; then \
					echo "fuzz: $$target ended on Go's fuzztime race (go.dev/issue/75804), with no failing input: not a failure"; \
				else \
					exit 1; \
				fi; \
			fi; \
		done; \
	done

test: vet lint lint-spec unit fuzz

# The fault suite's long form: Redis killed, frozen and failed over, lost
# and late replies, replicas killed, for the durations and trial counts of
# docs/guarantees.md (a few minutes). `make unit` runs its short form. The
# table of results goes to bin/faults-results.md.
FAULTS_RESULTS ?= bin/faults-results.md
faults:
	@mkdir -p $(dir $(FAULTS_RESULTS))
	@rm -f $(FAULTS_RESULTS).rows
	BREAKWATER_FAULTS=long BREAKWATER_FAULTS_RESULTS=$(abspath $(FAULTS_RESULTS)).rows \
		$(GO) test -count=1 -v -timeout 30m ./internal/faults/; \
		status=$$?; \
		{ printf '| scenario | form | result | figures |\n| --- | --- | --- | --- |\n'; sort $(FAULTS_RESULTS).rows; } > $(FAULTS_RESULTS); \
		rm -f $(FAULTS_RESULTS).rows; cat $(FAULTS_RESULTS); exit $$status

# A fleet on this machine, no Docker: redis-server (when installed), two
# control planes, two agents and a dependency that fails on cue.
demo: build
	./bin/demo

# One table of the decision path measured side by side in one run: each
# decision endpoint under wrk against a chi hello-world and the bare script,
# the scripts' cost inside Redis against a floor script, allocations per
# decision, and the SDK's cached path beside sony/gobreaker v2. Needs wrk
# and redis-server; about three minutes. BENCH_FLAGS goes to tools/bench
# (-rounds, -duration, -profile DIR). docs/performance.md reads the table.
bench:
	@command -v wrk >/dev/null 2>&1 || { echo "make bench needs wrk: apt-get install -y wrk" >&2; exit 1; }
	@command -v redis-server >/dev/null 2>&1 || { echo "make bench needs redis-server: apt-get install -y redis-server" >&2; exit 1; }
	$(GO) run ./tools/bench $(BENCH_FLAGS)

# Every Go benchmark of the project, once.
bench-all:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin

# Refresh docs/console.png from the console's browser test (needs chromium;
# sends a minute of traffic first so the sparklines have a shape).
.PHONY: console-screenshot
console-screenshot:
	$(GO) test -count=1 -run TestConsoleScreenshot ./internal/httpapi/consoletest -docs-screenshot
