package edge

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// CertReloader serves a certificate and key from two PEM files and loads
// them again when either file changes (its size or modification time), so
// that a renewed certificate is served without a restart. The files are
// looked at no more than once per CheckInterval; a pair that does not load
// (a half-written renewal) is logged by the caller through OnError and the
// previous certificate is kept.
type CertReloader struct {
	certFile, keyFile string
	// CheckInterval is how often the files are looked at (default 1s).
	CheckInterval time.Duration
	// OnError, when set, hears of a reload that failed.
	OnError func(error)
	now     func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp
	checked time.Time
}

type fileStamp struct {
	size int64
	mod  time.Time
}

// NewCertReloader loads the pair once and returns a reloader of it.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile, CheckInterval: time.Second, now: time.Now}
	st, err := r.stamps()
	if err != nil {
		return nil, err
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	r.cert, r.stamp, r.checked = &c, st, r.now()
	return r, nil
}

func (r *CertReloader) stamps() ([2]fileStamp, error) {
	var out [2]fileStamp
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return out, fmt.Errorf("TLS file: %w", err)
		}
		out[i] = fileStamp{size: fi.Size(), mod: fi.ModTime()}
	}
	return out, nil
}

// Certificate returns the current certificate, loading the files again
// first if they changed.
func (r *CertReloader) Certificate() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checked) < r.CheckInterval {
		return r.cert
	}
	r.checked = now
	st, err := r.stamps()
	if err != nil {
		r.fail(err)
		return r.cert
	}
	if st == r.stamp {
		return r.cert
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		// Most likely the files are being replaced one after the other:
		// keep serving the old pair and look again on a later handshake.
		r.fail(fmt.Errorf("reload TLS certificate %s: %w", r.certFile, err))
		return r.cert
	}
	r.cert, r.stamp = &c, st
	return r.cert
}

func (r *CertReloader) fail(err error) {
	if r.OnError != nil {
		r.OnError(err)
	}
}

// GetCertificate implements tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

// ServerConfig returns the TLS configuration of the listener: TLS 1.2 at
// least (1.3 preferred by Go's defaults), HTTP/2 and HTTP/1.1, the
// certificate from r. With clientCAs, a client may present a certificate,
// which must then chain to one of them (a service's certificate-bound
// token); a client without one is still served, and authenticates with
// DPoP.
func ServerConfig(r *CertReloader, clientCAs *x509.CertPool) *tls.Config {
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if clientCAs != nil {
		c.ClientCAs = clientCAs
		c.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return c
}

// LoadCertPool reads a PEM file of CA certificates.
func LoadCertPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read client CA: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("client CA %s holds no PEM certificate", file)
	}
	return p, nil
}

// ErrPlainHTTP is the refusal of plain HTTP on a non-loopback address.
var ErrPlainHTTP = errors.New("refusing to serve plain HTTP on a non-loopback address: personal data and device-bound credentials would cross the network unencrypted; give --tls-cert and --tls-key, or --insecure-http if a TLS-terminating proxy on the same host or network segment is the only client")

// CheckPlainHTTP returns ErrPlainHTTP (wrapped with the address) unless
// addr listens on loopback only. A host name other than "localhost" and an
// empty host (all interfaces) are not loopback.
func CheckPlainHTTP(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if IsLoopback(host) {
		return nil
	}
	return fmt.Errorf("--addr %s: %w", addr, ErrPlainHTTP)
}

// IsLoopback reports whether host (an IP literal or "localhost") is a
// loopback address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
