package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sekisho/sekisho"
)

// DefaultAnonymousRate is how many anonymous requests (bootstrap, device
// enrolment, token) one source address may make a minute by default.
const DefaultAnonymousRate = 600

// anonSourcesMax bounds the sources the limiter tracks; when full, sources
// whose bucket has refilled are dropped, and if none has, the request is
// refused (fail closed) rather than forgetting a source that is limited.
const anonSourcesMax = 100_000

// rateLimiter is a token bucket per source address: rate requests a
// minute, in bursts of at most rate.
type rateLimiter struct {
	rate float64 // per minute
	mu   sync.Mutex
	m    map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newRateLimiter(perMinute int) *rateLimiter {
	return &rateLimiter{rate: float64(perMinute), m: map[string]*bucket{}}
}

// take spends one token of src's bucket, or says how long until one is
// there.
func (l *rateLimiter) take(src string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[src]
	if b == nil {
		if len(l.m) >= anonSourcesMax {
			for k, o := range l.m {
				if o.tokens+now.Sub(o.at).Minutes()*l.rate >= l.rate {
					delete(l.m, k)
				}
			}
			if len(l.m) >= anonSourcesMax {
				return false, time.Minute
			}
		}
		b = &bucket{tokens: l.rate, at: now}
		l.m[src] = b
	}
	if d := now.Sub(b.at); d > 0 {
		b.tokens = math.Min(l.rate, b.tokens+d.Minutes()*l.rate)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Minute))
	return false, wait
}

// anonLimit limits an anonymous route per source address: 429 with
// Retry-After (whole seconds, at least 1) and the problem rate-limited.
func (s *Server) anonLimit(h func(http.ResponseWriter, *http.Request, sekisho.Caller) error) func(http.ResponseWriter, *http.Request, sekisho.Caller) error {
	return func(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
		if s.limiter == nil {
			return h(w, r, c)
		}
		ok, wait := s.limiter.take(sourceAddr(r), s.now())
		if !ok {
			secs := max(1, int(math.Ceil(wait.Seconds())))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			return sekisho.TypedErrorf(sekisho.ERateLimited, "rate-limited",
				"too many anonymous requests from your address; retry in %s", fmt.Sprint(time.Duration(secs)*time.Second))
		}
		return h(w, r, c)
	}
}
