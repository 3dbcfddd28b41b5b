package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Certificate is a TLS certificate and key read from two PEM files and read
// again when either changes, so a renewed certificate (cert-manager, certbot)
// is served without a restart. Use GetCertificate in a tls.Config. A new
// pair that does not load is refused: the pair in force stays, and one log
// line says why.
type Certificate struct {
	certFile, keyFile string
	log               *slog.Logger

	cur atomic.Pointer[tls.Certificate]

	mu     sync.Mutex
	stamps [2]fileStamp
	err    error
}

// LoadCertificate reads the certificate chain (certFile) and its private key
// (keyFile). A key file others can read is a warning. log nil means
// slog.Default().
func LoadCertificate(certFile, keyFile string, log *slog.Logger) (*Certificate, error) {
	if log == nil {
		log = slog.Default()
	}
	c := &Certificate{certFile: certFile, keyFile: keyFile, log: log}
	stamps, err := c.stat()
	if err != nil {
		return nil, err
	}
	cert, err := c.load()
	if err != nil {
		return nil, err
	}
	c.cur.Store(cert)
	c.stamps = stamps
	if stamps[1].mode&0o004 != 0 {
		log.Warn("the TLS key file is world-readable: chmod 600 it", "file", keyFile, "mode", stamps[1].mode.String())
	}
	return c, nil
}

func (c *Certificate) stat() ([2]fileStamp, error) {
	var st [2]fileStamp
	for i, name := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return st, fmt.Errorf("TLS: %w", err)
		}
		st[i] = stampOf(fi)
	}
	return st, nil
}

func (c *Certificate) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		// The error names the files, never the key's bytes.
		return nil, fmt.Errorf("TLS certificate %s with key %s: %w", c.certFile, c.keyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s: %w", c.certFile, err)
	}
	cert.Leaf = leaf
	return &cert, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// Leaf returns the certificate in force, parsed.
func (c *Certificate) Leaf() *x509.Certificate { return c.cur.Load().Leaf }

// Reload loads the pair again if either file changed, and reports whether it
// did; on an error the pair in force stays.
func (c *Certificate) Reload() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.stat()
	if err != nil {
		return false, c.refuse(err)
	}
	if c.stamps[0].same(st[0].fi) && c.stamps[1].same(st[1].fi) {
		return false, c.err
	}
	cert, err := c.load()
	c.stamps = st
	if err != nil {
		// A certificate and key are often replaced one after the other: the
		// next poll after the second write loads the pair.
		return false, c.refuse(err)
	}
	c.cur.Store(cert)
	c.err = nil
	c.log.Info("TLS certificate reloaded", "file", c.certFile, "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return true, nil
}

func (c *Certificate) refuse(err error) error {
	if c.err == nil || c.err.Error() != err.Error() {
		c.log.Warn("TLS certificate not reloaded: keeping the one in force", "err", err)
	}
	c.err = err
	return err
}

// Watch calls Reload every interval (default 2s) until ctx is done.
func (c *Certificate) Watch(ctx context.Context, interval time.Duration) {
	watch(ctx, interval, func() { c.Reload() })
}

// TLSConfig returns a server configuration serving c, TLS 1.2 at least.
func (c *Certificate) TLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: c.GetCertificate, MinVersion: tls.VersionTLS12}
}
