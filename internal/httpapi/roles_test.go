package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

const (
	secretReader   = "reader-secret-0123456789"
	secretAgent    = "agent-secret-0123456789"
	secretOperator = "operator-secret-0123456789"
)

func testTokens(t *testing.T) *Tokens {
	t.Helper()
	tok, err := ParseTokens(strings.NewReader(
		"# test tokens\nro reader " + secretReader + "\nsvc agent " + secretAgent + "\nops operator " + secretOperator + " # on call\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestRoleMatrix walks every operation of api/openapi.yaml with no token, a
// wrong token and each role, and checks the answer against the role the
// spec gives the operation: 401, 403, or served.
func TestRoleMatrix(t *testing.T) {
	ta := newTestAPI(t, testTokens(t))
	roles := specRoles(t)
	const faultBody = `{"abort_percent":100,"reason":"role test","ttl_ms":60000}`
	callers := []struct {
		name   string
		secret string
		role   Role
	}{
		{"no token", "", 0},
		{"unknown token", "not-a-known-secret-at-all", 0},
		{"reader", secretReader, RoleReader},
		{"agent", secretAgent, RoleAgent},
		{"operator", secretOperator, RoleOperator},
	}
	bodies := map[string]string{
		"PUT /v1/breakers/{name}":           `{}`,
		"POST /v1/breakers/{name}/outcomes": `{"outcomes":[{"success":true}]}`,
		"POST /v1/outcomes":                 `{"reports":[{"breaker":"rolecheck","outcomes":[{"success":true}]}]}`,
		"PUT /v1/breakers/{name}/override":  `{"state":"forced_closed","reason":"role test"}`,
		"PUT /v1/ratelimits/{name}":         `{"capacity":10,"refill_per_second":1}`,
		"POST /v1/ratelimits/{name}/take":   `{}`,
		"PUT /v1/faults/{name}":             faultBody,
	}
	ops := make([]string, 0, len(roles))
	for op := range roles {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	// Deletes last, deepest path first, so the objects the others need are
	// still there.
	slices.SortStableFunc(ops, func(a, b string) int {
		da, db := strings.HasPrefix(a, "DELETE"), strings.HasPrefix(b, "DELETE")
		if da && db {
			return len(b) - len(a)
		}
		return boolInt(da) - boolInt(db)
	})
	for _, c := range callers {
		// Every caller meets existing objects, made by the operator.
		ta.do("PUT", "/v1/breakers/rolecheck", `{}`, secretOperator)
		ta.do("PUT", "/v1/ratelimits/rolecheck", `{"capacity":10,"refill_per_second":1}`, secretOperator)
		ta.do("PUT", "/v1/faults/rolecheck", faultBody, secretOperator)
		for _, op := range ops {
			method, path, _ := strings.Cut(op, " ")
			path = strings.ReplaceAll(path, "{name}", "rolecheck")
			need := roles[op]
			t.Run(c.name+"/"+op, func(t *testing.T) {
				var status int
				if path == "/v1/events" {
					status = ta.streamStatus(t, c.secret)
				} else {
					status = ta.do(method, path, bodies[op], c.secret).Status
				}
				var want []int
				switch r, _ := parseRole(need); {
				case need == "":
					want = []int{200}
				case c.role == 0:
					want = []int{401}
				case c.role < r:
					want = []int{403}
				default:
					want = []int{200, 201, 204}
				}
				if !slices.Contains(want, status) {
					t.Errorf("%s %s as %s (needs %q) = %d, want one of %v", method, path, c.name, need, status, want)
				}
			})
		}
	}
}

// streamStatus opens /v1/events and returns its status without reading it.
func (ta *testAPI) streamStatus(t *testing.T, secret string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ta.srv.URL+"/v1/events", nil)
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	res, err := ta.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET /v1/events: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestParseTokens(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"three fields", "a reader", "want \"name role secret\""},
		{"unknown role", "a admin secret-secret-secret", "role \"admin\""},
		{"short secret", "a reader short", "shorter than"},
		{"duplicate name", "a reader secret-secret-secret1\na agent secret-secret-secret2", "appears twice"},
		{"duplicate secret", "a reader secret-secret-secret1\nb agent secret-secret-secret1", "used by another"},
		{"empty", "# nothing\n\n", "no token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTokens(strings.NewReader(tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseTokens() = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret-secret") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

// TestMetricsBehindAToken: with a metrics role configured, /metrics asks
// for a token of that role; by default it is open.
func TestMetricsBehindAToken(t *testing.T) {
	open := newTestAPI(t, testTokens(t))
	if res := open.do("GET", "/metrics", nil, ""); res.Status != http.StatusOK {
		t.Fatalf("/metrics by default = %d, want 200", res.Status)
	}
	m := storetest.NewMini(t, testStart)
	api := New(Options{Store: m.Store, Tokens: testTokens(t), MetricsRole: RoleAgent})
	ta := &testAPI{t: t, srv: newServer(t, api)}
	for _, c := range []struct {
		secret string
		want   int
	}{{"", 401}, {secretReader, 403}, {secretAgent, 200}, {secretOperator, 200}} {
		if res := ta.do("GET", "/metrics", nil, c.secret); res.Status != c.want {
			t.Errorf("/metrics with %q = %d, want %d", c.secret, res.Status, c.want)
		}
	}
}
