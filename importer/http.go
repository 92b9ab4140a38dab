package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/client"
)

// HTTPSink writes through a server's API with a client's device-bound
// credential, several requests at a time (purpose import).
type HTTPSink struct {
	collection string
	c          *client.Client
	// Parallel is the number of requests in flight (default 8).
	Parallel int
	mu       sync.Mutex
	skipped  int // keyed rows whose record was already stored (409)
}

// NewHTTPSink returns a sink that creates records of collection through c.
func NewHTTPSink(c *client.Client, collection string) *HTTPSink {
	return &HTTPSink{collection: collection, c: c, Parallel: 8}
}

// Existing is the number of keyed rows whose record was already stored (409)
// and was not written again.
func (s *HTTPSink) Existing() int { return s.skipped }

// Flush implements Sink: every row is written before Write returns.
func (s *HTTPSink) Flush(context.Context) error { return nil }

func (s *HTTPSink) do(ctx context.Context, method, path string, body []byte) (*http.Response, []byte, error) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Sekisho-Purpose", "import")
	resp, err := s.c.Do(ctx, method, path, body, h)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// Schema fetches the collection's schema (CSV needs it to type the cells).
func (s *HTTPSink) Schema(ctx context.Context) (*sekisho.Schema, error) {
	resp, b, err := s.do(ctx, "GET", "/v1/collections/"+s.collection, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get schema of %s: %s", s.collection, problemText(resp, b))
	}
	var sc sekisho.Schema
	if err := json.Unmarshal(b, &sc); err != nil {
		return nil, fmt.Errorf("get schema: %w", err)
	}
	return &sc, nil
}

func problemText(resp *http.Response, b []byte) string {
	var p struct{ Detail, Type string }
	if json.Unmarshal(b, &p) == nil && p.Detail != "" {
		return fmt.Sprintf("%s: %s", resp.Status, p.Detail)
	}
	return resp.Status
}

// Write creates every item with its own request; a 400 or 403 is the row's
// error, anything else stops the import.
func (s *HTTPSink) Write(ctx context.Context, items []Item) ([]error, error) {
	errs := make([]error, len(items))
	var fatal error
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, s.Parallel))
	for i, it := range items {
		body, err := json.Marshal(it.Input)
		if err != nil {
			errs[i] = err
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp, b, err := s.do(ctx, "POST", "/v1/collections/"+s.collection+"/records", body)
			s.mu.Lock()
			defer s.mu.Unlock()
			switch {
			case err != nil:
				fatal = err
			case resp.StatusCode == http.StatusCreated:
			case resp.StatusCode == http.StatusConflict && it.Input.Key != "":
				s.skipped++ // the keyed record is already stored
			case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusForbidden:
				errs[i] = errors.New(problemText(resp, b))
			default:
				fatal = errors.New(problemText(resp, b))
			}
		}()
	}
	wg.Wait()
	return errs, fatal
}
