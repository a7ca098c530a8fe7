package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "breakwater test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLSListener(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	s := start(t, []string{"--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile}, nil)
	url := "https" + s.URL[len("http"):]
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := client.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("GET over TLS: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil {
		t.Fatalf("GET /healthz over TLS = %d, TLS %v", res.StatusCode, res.TLS != nil)
	}
	if res, err := http.Get(s.URL + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Error("plain HTTP to the TLS listener was served")
		}
	}
	if err := run(t.Context(), []string{"--tls-cert", certFile}, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
		t.Error("--tls-cert without --tls-key was accepted")
	}
}

// TestEvictionWarning: a Redis that may evict keys gets a warning at start.
func TestEvictionWarning(t *testing.T) {
	r := storetest.StartRedisWith(t, "--maxmemory-policy", "allkeys-lru")
	s := start(t, []string{"--listen", "127.0.0.1:0", "--redis", r.URL()}, nil)
	if !s.logged("maxmemory-policy allkeys-lru") {
		t.Error("no warning about maxmemory-policy allkeys-lru")
	}
}
