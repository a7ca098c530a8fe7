package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/breakwater-dev/breakwater/client"
	"github.com/breakwater-dev/breakwater/client/resilience"
)

// The reference's ResilientHTTPClient and OrderService, with Breakwater.
// docs/sdk.md points here as the SDK guide's whole-service example.

// ResilientHTTPClient calls one dependency over HTTP. Its breaker and
// rate limit are the fleet's, kept by the control plane under the
// dependency's name; its retries and timeout are this process's.
type ResilientHTTPClient struct {
	service string
	baseURL string
	http    *http.Client
}

// NewResilientHTTPClient returns a client of service at baseURL that
// makes up to attempts attempts per call, each with timeout to answer.
func NewResilientHTTPClient(bw *client.Client, service, baseURL string, attempts int, timeout time.Duration) *ResilientHTTPClient {
	return &ResilientHTTPClient{
		service: service,
		baseURL: baseURL,
		http: (&client.Transport{
			Limiter: bw.Limiter(service),
			Breaker: bw.Breaker(service),
			Retry:   &resilience.Retry{MaxAttempts: attempts, BaseDelay: 50 * time.Millisecond, MaxDelay: 2 * time.Second},
			Timeout: timeout,
		}).Client(),
	}
}

// errRejected is a dependency's 4xx answer: the request was wrong, and
// sending it again will not help.
var errRejected = errors.New("rejected")

// Post sends in as JSON to path and decodes the JSON answer into out
// (nil to ignore it). The key makes retries safe: the dependency applies
// one request per Idempotency-Key.
func (rc *ResilientHTTPClient) Post(ctx context.Context, path, key string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rc.baseURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := rc.http.Do(req)
	if err != nil { // refused (client.ErrOpen, client.ErrRateLimited), timed out, unreachable
		return fmt.Errorf("%s: %w", rc.service, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 500:
		return fmt.Errorf("%s: %s", rc.service, resp.Status)
	case resp.StatusCode >= 400:
		return fmt.Errorf("%s: %w: %s", rc.service, errRejected, resp.Status)
	case out == nil:
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// OrderService places orders: it reserves the stock, charges the
// customer and sends a confirmation.
type OrderService struct {
	inventory, payment, email *ResilientHTTPClient
	health                    http.Handler
}

// NewOrderService returns an OrderService that calls the services at
// those URLs, with the reference's retries and timeouts.
func NewOrderService(bw *client.Client, inventoryURL, paymentURL, emailURL string) *OrderService {
	return &OrderService{
		inventory: NewResilientHTTPClient(bw, "inventory", inventoryURL, 3, 5*time.Second),
		payment:   NewResilientHTTPClient(bw, "payment", paymentURL, 3, 10*time.Second),
		email:     NewResilientHTTPClient(bw, "email", emailURL, 1, 3*time.Second),
		// No stock, no order: inventory is critical. Orders are taken
		// while payments are down (charged later) and email is down
		// (queued): those only degrade the service.
		health: bw.HealthHandler(
			client.Critical("inventory"),
			client.Optional("payment"),
			client.Optional("email"),
		),
	}
}

// Health serves the service's /health from the fleet's breakers, as the
// client already knows them: 503 while inventory's breaker is open, 200
// otherwise, listing what is degraded. It makes no call to the
// dependencies or to the control plane, however often the load balancer
// asks.
func (s *OrderService) Health() http.Handler { return s.health }

// Order is what a customer orders.
type Order struct {
	ID       string `json:"id"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

// Receipt says how an order went: the reservation's id, and the
// payment's and the email's status.
type Receipt struct {
	OrderID, Reservation, Payment, Email string
}

// CreateOrder places o.
func (s *OrderService) CreateOrder(ctx context.Context, o Order) (Receipt, error) {
	// 1. Reserve the stock. Critical: no stock, no order.
	var res struct {
		ID string `json:"id"`
	}
	if err := s.inventory.Post(ctx, "/reserve", o.ID+"/reserve", o, &res); err != nil {
		return Receipt{}, fmt.Errorf("order %s: inventory unavailable: %w", o.ID, err)
	}

	// 2. Charge. A declined charge gives the stock back and fails the
	// order; payments being down (5xx, timeouts, the fleet's breaker
	// open) takes the order and leaves the charge pending, for a job that
	// charges pending orders later.
	var pay struct {
		Status string `json:"status"`
	}
	err := s.payment.Post(ctx, "/charge", o.ID+"/charge", o, &pay)
	switch {
	case err == nil:
	case errors.Is(err, errRejected), ctx.Err() != nil:
		// Best effort: an unreleased reservation expires on its own.
		_ = s.inventory.Post(context.WithoutCancel(ctx), "/release/"+res.ID, o.ID+"/release", nil, nil)
		return Receipt{}, fmt.Errorf("order %s: payment failed: %w", o.ID, err)
	default:
		pay.Status = "pending"
	}

	// 3. Confirm by email. Not critical: queue it when email fails.
	var mail struct {
		Status string `json:"status"`
	}
	if err := s.email.Post(ctx, "/send", o.ID+"/email", o, &mail); err != nil {
		mail.Status = "queued"
	}
	return Receipt{OrderID: o.ID, Reservation: res.ID, Payment: pay.Status, Email: mail.Status}, nil
}

func Example_orderService() {
	endpoint, stop := startControlPlane() // breakers and limits inventory, payment and email
	defer stop()
	bw, err := client.New(client.Config{Endpoints: []string{endpoint}})
	if err != nil {
		log.Fatal(err)
	}
	defer bw.Close()

	shop := startShop()
	defer shop.Close()
	orders := NewOrderService(bw, shop.URL+"/inventory", shop.URL+"/payment", shop.URL+"/email")

	for _, payments := range []string{"up", "down", "declining"} {
		shop.payments.Store(payments)
		r, err := orders.CreateOrder(context.Background(), Order{ID: "o-" + payments, Item: "kettle", Quantity: 1})
		fmt.Printf("payments %s: %+v %v\n", payments, r, err)
	}
	fmt.Println("released:", shop.releasedNow())

	rec := httptest.NewRecorder()
	orders.Health().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	var health client.HealthReport
	json.Unmarshal(rec.Body.Bytes(), &health)
	fmt.Println("health:", rec.Code, health.Status, health.Down, health.Degraded)
	// Output:
	// payments up: {OrderID:o-up Reservation:r-o-up Payment:paid Email:sent} <nil>
	// payments down: {OrderID:o-down Reservation:r-o-down Payment:pending Email:sent} <nil>
	// payments declining: {OrderID: Reservation: Payment: Email:} order o-declining: payment failed: payment: rejected: 402 Payment Required
	// released: [r-o-declining]
	// health: 200 ok [] []
}

// shop serves fake inventory, payment and email services under
// /inventory, /payment and /email. payments says how payments answer:
// "up", "down" (503) or "declining" (402).
type shop struct {
	*httptest.Server
	payments atomic.Value
	mu       sync.Mutex
	released []string
}

func startShop() *shop {
	s := &shop{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /inventory/reserve", func(w http.ResponseWriter, r *http.Request) {
		var o Order
		json.NewDecoder(r.Body).Decode(&o)
		fmt.Fprintf(w, `{"id": %q}`, "r-"+o.ID)
	})
	mux.HandleFunc("POST /inventory/release/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.released = append(s.released, r.PathValue("id"))
		s.mu.Unlock()
	})
	mux.HandleFunc("POST /payment/charge", func(w http.ResponseWriter, r *http.Request) {
		switch s.payments.Load() {
		case "down":
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		case "declining":
			http.Error(w, "card declined", http.StatusPaymentRequired)
		default:
			fmt.Fprint(w, `{"status": "paid"}`)
		}
	})
	mux.HandleFunc("POST /email/send", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status": "sent"}`)
	})
	s.Server = httptest.NewServer(mux)
	return s
}

func (s *shop) releasedNow() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "[" + strings.Join(s.released, " ") + "]"
}
