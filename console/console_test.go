package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cases := []struct {
		path, wantType string
		status         int
	}{
		{"/console", "", http.StatusMovedPermanently},
		{"/console/", "text/html; charset=utf-8", http.StatusOK},
		{"/console/app.js", "text/javascript; charset=utf-8", http.StatusOK},
		{"/console/style.css", "text/css; charset=utf-8", http.StatusOK},
		{"/console/nope.js", "", http.StatusNotFound},
		{"/console/a/b.js", "", http.StatusNotFound},
		{"/console/../console.go", "", http.StatusNotFound},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			resp, err := noRedirect.Get(srv.URL + c.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != CSP {
				t.Fatalf("CSP %q", got)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatal("no nosniff")
			}
			if c.wantType != "" && resp.Header.Get("Content-Type") != c.wantType {
				t.Fatalf("type %q, want %q", resp.Header.Get("Content-Type"), c.wantType)
			}
			if c.status == http.StatusMovedPermanently && resp.Header.Get("Location") != Prefix {
				t.Fatalf("redirect to %q", resp.Header.Get("Location"))
			}
		})
	}
}

// TestCSPStrict: the policy allows no inline code, no eval and no other
// origin; the page has no inline script or style and loads nothing from
// another origin (no CDN).
func TestCSPStrict(t *testing.T) {
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "http:", "https:", "*"} {
		if strings.Contains(CSP, bad) {
			t.Fatalf("CSP allows %s: %s", bad, CSP)
		}
	}
	index, err := fs.ReadFile(Assets(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]+</script>|<style|\sstyle=|\son[a-z]+=`).Match(index) {
		t.Fatalf("index.html has inline script or style:\n%s", index)
	}
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllSubmatch(index, -1) {
		if strings.Contains(string(m[1]), "//") {
			t.Fatalf("index.html loads %s from another origin", m[1])
		}
	}
	js, err := fs.ReadFile(Assets(), "app.js")
	if err != nil {
		t.Fatal(err)
	}
	// No dynamic code and no module loaded from elsewhere.
	for _, bad := range []*regexp.Regexp{regexp.MustCompile(`\beval\(`), regexp.MustCompile(`new Function\(`), regexp.MustCompile(`import\(\s*["']https?:`), regexp.MustCompile(`from\s*["']https?:`)} {
		if loc := bad.FindIndex(js); loc != nil {
			t.Fatalf("app.js: %s at %d: %q", bad, loc[0], js[max(0, loc[0]-40):min(len(js), loc[1]+40)])
		}
	}
	resp := httptest.NewRecorder()
	Handler().ServeHTTP(resp, httptest.NewRequest("GET", "/console/", nil))
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `<script type="module" src="app.js">`) {
		t.Fatalf("index does not load app.js:\n%s", b)
	}
}
