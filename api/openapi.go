package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the machine-readable REST contract (OpenAPI 3.1).
//
//go:embed openapi.yaml
var openAPIDocument []byte

// OpenAPIDocument returns a copy of the embedded OpenAPI 3.1 document.
func OpenAPIDocument() []byte {
	return append([]byte(nil), openAPIDocument...)
}

// OpenAPIHandler serves the OpenAPI document as application/yaml (mount it at
// GET /api/v1/openapi.yaml). Unlike the API's JSON it may be cached briefly.
func OpenAPIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/yaml")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(openAPIDocument)
	})
}
