package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

// apiStub stands for the API: it answers every request it gets with a
// marker, so a test can tell who answered.
var apiStub = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusNotFound)
	_, _ = io.WriteString(w, `{"from":"api"}`)
})

const indexHTML = `<!doctype html><html><head><script type="module" crossorigin src="/assets/index-AbC123.js"></script></head><body><div id="root"></div></body></html>`

func testFS() fstest.MapFS {
	return fstest.MapFS{
		"index.html":              {Data: []byte(indexHTML)},
		"favicon.svg":             {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
		"assets/index-AbC123.js":  {Data: []byte(strings.Repeat("console.log('prescripto');\n", 200))},
		"assets/index-XyZ789.css": {Data: []byte("body{margin:0}")},
	}
}

func serve(t *testing.T, h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	t.Parallel()
	h, err := NewFS(testFS(), apiStub)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path string
		wantAPI            bool
		wantCache          string
		wantType           string
		wantIndex          bool
	}{
		{name: "root is the client", method: "GET", path: "/", wantCache: "no-cache", wantType: "text/html", wantIndex: true},
		{name: "client route falls back to index", method: "GET", path: "/doctors/3fa2c0f6", wantCache: "no-cache", wantType: "text/html", wantIndex: true},
		{name: "nested client route with query", method: "GET", path: "/my-appointments?razorpay_order_id=order_1", wantCache: "no-cache", wantType: "text/html", wantIndex: true},
		{name: "index.html itself is revalidated", method: "GET", path: "/index.html", wantCache: "no-cache", wantType: "text/html", wantIndex: true},
		{name: "HEAD of a client route", method: "HEAD", path: "/admin/doctors", wantCache: "no-cache", wantType: "text/html"},
		{name: "hashed asset is immutable", method: "GET", path: "/assets/index-AbC123.js", wantCache: "public, max-age=31536000, immutable", wantType: "text/javascript"},
		{name: "hashed stylesheet is immutable", method: "GET", path: "/assets/index-XyZ789.css", wantCache: "public, max-age=31536000, immutable", wantType: "text/css"},
		{name: "unhashed file is revalidated", method: "GET", path: "/favicon.svg", wantCache: "no-cache", wantType: "image/svg+xml"},
		{name: "API root", method: "GET", path: "/api", wantAPI: true},
		{name: "API route", method: "GET", path: "/api/v1/doctors", wantAPI: true},
		{name: "unknown API route is the API's 404", method: "GET", path: "/api/v1/no-such-thing", wantAPI: true},
		{name: "healthz", method: "GET", path: "/healthz", wantAPI: true},
		{name: "readyz", method: "GET", path: "/readyz", wantAPI: true},
		{name: "metrics", method: "GET", path: "/metrics", wantAPI: true},
		{name: "sandbox checkout", method: "GET", path: "/sandbox/checkout/order_1", wantAPI: true},
		{name: "POST never reaches the client", method: "POST", path: "/doctors", wantAPI: true},
		{name: "PUT never reaches the client", method: "PUT", path: "/", wantAPI: true},
		{name: "a missing asset is not the index", method: "GET", path: "/assets/index-OLD.js", wantAPI: true},
		{name: "a missing file is not the index", method: "GET", path: "/wp-login.php", wantAPI: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := serve(t, h, tc.method, tc.path)
			if tc.wantAPI {
				if w.Body.String() != `{"from":"api"}` || w.Code != http.StatusNotFound {
					t.Fatalf("%s %s: got %d %q, want the API's answer", tc.method, tc.path, w.Code, w.Body.String())
				}
				if w.Header().Get("Cache-Control") != "" {
					t.Errorf("the client set headers on the API's answer: %v", w.Header())
				}
				return
			}
			if w.Code != http.StatusOK {
				t.Fatalf("%s %s: status %d", tc.method, tc.path, w.Code)
			}
			if got := w.Header().Get("Cache-Control"); got != tc.wantCache {
				t.Errorf("Cache-Control = %q, want %q", got, tc.wantCache)
			}
			if got := w.Header().Get("Content-Type"); !strings.HasPrefix(got, tc.wantType) {
				t.Errorf("Content-Type = %q, want %s", got, tc.wantType)
			}
			if got := w.Header().Get("Content-Security-Policy"); got != ContentSecurityPolicy {
				t.Errorf("Content-Security-Policy = %q", got)
			}
			for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
				if w.Header().Get(k) != v {
					t.Errorf("%s = %q, want %q", k, w.Header().Get(k), v)
				}
			}
			if tc.wantIndex && w.Body.String() != indexHTML {
				t.Errorf("body is not index.html: %q", w.Body.String())
			}
			if tc.method == "HEAD" && w.Body.Len() != 0 {
				t.Errorf("HEAD has a body")
			}
		})
	}
}

// The policy forbids what an injected script would need: inline scripts and
// styles, eval, other origins' scripts (but Razorpay's), plugins, framing,
// and <base> rewriting.
func TestContentSecurityPolicyIsStrict(t *testing.T) {
	t.Parallel()
	dirs := map[string]string{}
	for _, d := range strings.Split(ContentSecurityPolicy, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		dirs[name] = value
	}
	for _, bad := range []string{"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "blob:", "http:"} {
		for _, d := range []string{"script-src", "style-src", "default-src"} {
			for _, v := range strings.Fields(dirs[d]) {
				if v == bad {
					t.Errorf("%s allows %s", d, bad)
				}
			}
		}
	}
	want := map[string]string{"default-src": "'none'", "base-uri": "'none'", "frame-ancestors": "'none'", "style-src": "'self'", "form-action": "'self'"}
	for d, v := range want {
		if dirs[d] != v {
			t.Errorf("%s = %q, want %q", d, dirs[d], v)
		}
	}
	if dirs["script-src"] != "'self' https://checkout.razorpay.com" {
		t.Errorf("script-src = %q", dirs["script-src"])
	}
}

func TestGzipAndETag(t *testing.T) {
	t.Parallel()
	h, err := NewFS(testFS(), apiStub)
	if err != nil {
		t.Fatal(err)
	}
	const js = "/assets/index-AbC123.js"
	w := serve(t, h, "GET", js, "Accept-Encoding", "br, gzip")
	if w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("no gzip: %v", w.Header())
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if string(plain) != string(testFS()["assets/index-AbC123.js"].Data) {
		t.Fatal("gzip body differs from the file")
	}
	gzTag := w.Header().Get("ETag")
	if w := serve(t, h, "GET", js, "Accept-Encoding", "gzip;q=0"); w.Header().Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got gzip")
	}
	plainTag := serve(t, h, "GET", js).Header().Get("ETag")
	if gzTag == "" || plainTag == "" || gzTag == plainTag {
		t.Errorf("ETags: gzip %q, identity %q: want two different tags", gzTag, plainTag)
	}
	if w := serve(t, h, "GET", js, "If-None-Match", plainTag); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("If-None-Match: %d", w.Code)
	}
}

// The embedded build is what the binary serves: index.html names only
// files that are there (immutable, hashed), and loads no inline script or
// style that the policy would block.
func TestEmbeddedBuild(t *testing.T) {
	t.Parallel()
	h, err := New(apiStub)
	if err != nil {
		t.Fatal(err)
	}
	w := serve(t, h, "GET", "/")
	if w.Code != http.StatusOK {
		t.Fatalf("GET /: %d (is web/dist built and committed?)", w.Code)
	}
	page := w.Body.String()
	if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(page) || strings.Contains(page, "<style") || strings.Contains(page, " style=") {
		t.Errorf("index.html has inline script or style:\n%s", page)
	}
	refs := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) == 0 {
		t.Fatalf("index.html loads no asset:\n%s", page)
	}
	for _, m := range refs {
		if !regexp.MustCompile(`-[A-Za-z0-9_-]{8}\.(js|css)$`).MatchString(m[1]) {
			t.Errorf("%s is not a hashed name", m[1])
		}
		a := serve(t, h, "GET", m[1])
		if a.Code != http.StatusOK || a.Header().Get("Cache-Control") != cacheImmutable {
			t.Errorf("%s: %d, Cache-Control %q", m[1], a.Code, a.Header().Get("Cache-Control"))
		}
	}
}
