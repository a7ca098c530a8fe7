package store_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestTLSAndACL connects to a real redis-server over TLS (rediss://) as an
// ACL user named in the URL, and checks that a wrong password is an
// outage to report, not a server error.
func TestTLSAndACL(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	tlsPort := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	r := storetest.StartRedisWith(t, "--tls-port", tlsPort, "--tls-cert-file", cert, "--tls-key-file", key,
		"--tls-auth-clients", "no", "--user", "breakwater", "on", ">acl-secret-4242", "~*", "&*", "+@all")
	if r.Bulk("CONFIG", "GET", "tls-port") == "" {
		t.Skip("this redis-server has no TLS")
	}
	ctx := context.Background()

	good, err := store.Open(store.Config{URL: "rediss://breakwater:acl-secret-4242@127.0.0.1:" + tlsPort + "/0?skip_verify=true", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	if err := good.Ready(ctx); err != nil {
		t.Fatalf("Ready over TLS as an ACL user: %v", err)
	}

	bad, err := store.Open(store.Config{URL: "rediss://breakwater:wrong@127.0.0.1:" + tlsPort + "/0?skip_verify=true", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Ready(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ready with a wrong password = %v, want ErrUnavailable", err)
	}

	plain, err := store.Open(store.Config{URL: "redis://breakwater:acl-secret-4242@127.0.0.1:" + tlsPort + "/0", Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Ready(ctx); err == nil {
		t.Fatal("plain TCP to the TLS port answered; want a failure")
	}
}

func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(k)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}
