package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// ContentSecurityPolicy is the policy of every page and file the client is
// served with. Scripts and styles come only from this origin (Vite emits no
// inline script or style, and the app sets no style attributes); the API is
// the same origin. Razorpay Checkout (real keys only) is the one foreign
// script and frame. Doctor photos may live on any HTTPS host.
const ContentSecurityPolicy = "default-src 'none'; " +
	"script-src 'self' https://checkout.razorpay.com; " +
	"style-src 'self'; " +
	"img-src 'self' data: https:; " +
	"font-src 'self'; " +
	"connect-src 'self' https://api.razorpay.com https://lumberjack.razorpay.com; " +
	"frame-src https://api.razorpay.com https://checkout.razorpay.com; " +
	"manifest-src 'self'; " +
	"base-uri 'none'; " +
	"form-action 'self'; " +
	"frame-ancestors 'none'"

// Cache-Control values: Vite names everything under assets/ by a hash of
// its content, so those never change; everything else (index.html above
// all) is revalidated on every load so a new release is picked up at once.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// reserved are the paths the client never answers: the API, the operations
// endpoints and the payments sandbox's checkout page.
var reserved = []string{"/api", "/healthz", "/readyz", "/metrics", "/sandbox"}

// isReserved reports whether p is one of reserved or below it.
func isReserved(p string) bool {
	for _, r := range reserved {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

type file struct {
	body, gz    []byte
	contentType string
	etag        string
}

// Handler serves the client in front of next: GET and HEAD of a built file,
// and of any other path that looks like a client route (no dot in its last
// segment), which gets index.html (the SPA fallback). Everything else, and
// every reserved path whatever it is, goes to next untouched.
type Handler struct {
	next  http.Handler
	files map[string]*file
	index *file
}

// New builds the handler over the embedded build.
func New(next http.Handler) (*Handler, error) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, err
	}
	return NewFS(sub, next)
}

// NewFS builds the handler over the build in fsys (tests give their own).
// Files are read once: a text file worth compressing is kept gzipped too.
func NewFS(fsys fs.FS, next http.Handler) (*Handler, error) {
	h := &Handler{next: next, files: map[string]*file{}}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		f := &file{body: b, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		if f.contentType = mime.TypeByExtension(path.Ext(p)); f.contentType == "" {
			f.contentType = http.DetectContentType(b)
		}
		if compressible(p) && len(b) > 1024 {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			_, _ = zw.Write(b)
			_ = zw.Close()
			if buf.Len() < len(b) {
				f.gz = buf.Bytes()
			}
		}
		h.files["/"+p] = f
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.index = h.files["/index.html"]
	return h, nil
}

func compressible(p string) bool {
	switch path.Ext(p) {
	case ".js", ".css", ".html", ".svg", ".json", ".txt", ".map":
		return true
	}
	return false
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || isReserved(p) || h.index == nil {
		h.next.ServeHTTP(w, r)
		return
	}
	f, cache := h.files[p], cacheRevalidate
	switch {
	case f != nil && strings.HasPrefix(p, "/assets/"):
		cache = cacheImmutable
	case f != nil:
		// another built file (index.html, favicon.svg): revalidated
	case strings.Contains(path.Base(p), "."):
		// A file that is not there (an old asset, a probe): the API's 404.
		h.next.ServeHTTP(w, r)
		return
	default:
		f = h.index
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cache-Control", cache)
	hd.Set("Content-Type", f.contentType)
	hd.Add("Vary", "Accept-Encoding")
	body, etag := f.body, f.etag
	if f.gz != nil && acceptsGzip(r) {
		hd.Set("Content-Encoding", "gzip")
		body, etag = f.gz, strings.TrimSuffix(f.etag, `"`)+`-gz"`
	}
	hd.Set("ETag", etag)
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// acceptsGzip reports whether the request's Accept-Encoding takes gzip
// (named, and not with q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
