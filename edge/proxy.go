package edge

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies is the set of networks whose X-Forwarded-For or Forwarded header
// is believed. The zero value trusts no one: the source of a request is
// then its connection's peer address, whatever the headers say.
type Proxies struct {
	nets []netip.Prefix
}

// ParseProxies parses a comma-separated list of CIDRs (or single addresses).
func ParseProxies(list string) (Proxies, error) {
	var p Proxies
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return Proxies{}, fmt.Errorf("--trusted-proxies %q: %w", s, err)
			}
			p.nets = append(p.nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		n, err := netip.ParsePrefix(s)
		if err != nil {
			return Proxies{}, fmt.Errorf("--trusted-proxies %q: %w", s, err)
		}
		p.nets = append(p.nets, n.Masked())
	}
	return p, nil
}

// Empty reports whether no proxy is trusted.
func (p Proxies) Empty() bool { return len(p.nets) == 0 }

func (p Proxies) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr returns the address of the client behind r. The connection's
// peer is the answer unless it is a trusted proxy; then the forwarding
// headers are read from the right (the hop nearest to us) leftwards, past
// every trusted proxy, and the first address that is not one is the
// client. Forwarded (RFC 7239) is preferred to X-Forwarded-For when both
// are present. A header that does not parse ends the walk at the last
// trusted hop, so a client cannot choose its own address by sending junk.
func (p Proxies) ClientAddr(r *http.Request) string {
	peer := r.RemoteAddr
	if h, _, err := net.SplitHostPort(peer); err == nil {
		peer = h
	}
	if len(p.nets) == 0 {
		return peer
	}
	a, err := netip.ParseAddr(peer)
	if err != nil || !p.trusted(a) {
		return peer
	}
	hops := forwardedFor(r.Header)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(hops[i])
		if err != nil {
			return client
		}
		client = h.Unmap().String()
		if !p.trusted(h) {
			return client
		}
	}
	return client
}

// forwardedFor lists the for= addresses of the Forwarded headers, or else
// the addresses of X-Forwarded-For, in order (client first).
func forwardedFor(h http.Header) []string {
	var out []string
	if fw := h.Values("Forwarded"); len(fw) > 0 {
		for _, line := range fw {
			for _, elem := range strings.Split(line, ",") {
				addr := "_invalid"
				for _, pair := range strings.Split(elem, ";") {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if ok && strings.EqualFold(k, "for") {
						addr = forwardedNode(v)
					}
				}
				out = append(out, addr)
			}
		}
		return out
	}
	for _, line := range h.Values("X-Forwarded-For") {
		for _, a := range strings.Split(line, ",") {
			out = append(out, strings.TrimSpace(a))
		}
	}
	return out
}

// forwardedNode turns an RFC 7239 node ("192.0.2.1", "\"[2001:db8::1]:4711\"")
// into a bare address.
func forwardedNode(v string) string {
	v = strings.Trim(v, `"`)
	if strings.HasPrefix(v, "[") {
		if i := strings.IndexByte(v, ']'); i > 0 {
			return v[1:i]
		}
		return v
	}
	if h, _, err := net.SplitHostPort(v); err == nil {
		return h
	}
	return v
}
