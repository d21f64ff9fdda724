// Package apitest holds test helpers for package api: validating requests
// and responses against the embedded OpenAPI 3.1 document with kin-openapi.
// It imports testing, so only tests may import it (package api never does).
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/prescripto/prescripto/api"
)

// Validator checks HTTP exchanges against the OpenAPI document.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// LoadDocument parses and validates an OpenAPI document (3.0 or 3.1; 3.1
// schemas are checked as JSON Schema 2020-12) and builds its router.
func LoadDocument(ctx context.Context, data []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("apitest: load OpenAPI document: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("apitest: invalid OpenAPI document: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("apitest: route OpenAPI document: %w", err)
	}
	return &Validator{doc: doc, router: router}, nil
}

var shared = sync.OnceValues(func() (*Validator, error) {
	// The calendars the API serves are text, checked as a string.
	openapi3filter.RegisterBodyDecoder("text/calendar", openapi3filter.PlainBodyDecoder)
	return LoadDocument(context.Background(), api.OpenAPIDocument())
})

// NewValidator returns the validator of api's embedded document (parsed
// once per test binary), failing tb if the document does not load.
func NewValidator(tb testing.TB) *Validator {
	tb.Helper()
	v, err := shared()
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// Document is the parsed document.
func (v *Validator) Document() *openapi3.T { return v.doc }

func (v *Validator) options() *openapi3filter.Options {
	return &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
	}
}

// ValidateResponse fails tb unless the response (status, header, body) to
// req is one the document allows for req's operation. A 404 or 405 for a
// path the document does not have must still be a valid problem+json.
func (v *Validator) ValidateResponse(tb testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	tb.Helper()
	if err := v.CheckResponse(req, status, header, body); err != nil {
		tb.Errorf("%s %s -> %d: response does not match openapi.yaml: %v\nbody: %s", req.Method, req.URL.Path, status, err, truncate(body))
	}
}

// CheckResponse is ValidateResponse returning the error.
func (v *Validator) CheckResponse(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		if (errors.Is(err, routers.ErrPathNotFound) && status == http.StatusNotFound) ||
			(errors.Is(err, routers.ErrMethodNotAllowed) && status == http.StatusMethodNotAllowed) {
			return v.checkProblem(status, header, body)
		}
		return fmt.Errorf("no operation in openapi.yaml: %w", err)
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: params,
			Route:      route,
			Options:    v.options(),
		},
		Status:  status,
		Header:  header,
		Options: v.options(),
	}
	input.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(req.Context(), input)
}

// checkProblem validates a problem+json body against the Problem schema.
func (v *Validator) checkProblem(status int, header http.Header, body []byte) error {
	if ct := header.Get("Content-Type"); ct != "application/problem+json" {
		return fmt.Errorf("status %d: Content-Type %q, want application/problem+json", status, ct)
	}
	ref := v.doc.Components.Schemas["Problem"]
	if ref == nil || ref.Value == nil {
		return errors.New("openapi.yaml has no Problem schema")
	}
	value, err := decodeJSON(body)
	if err != nil {
		return err
	}
	return ref.Value.VisitJSON(value, openapi3.EnableJSONSchema2020())
}

// ValidateRequest fails tb unless req (with body, since req.Body may have
// been consumed already) is a request the document allows. Use it to check
// the requests a test sends are the documented ones.
func (v *Validator) ValidateRequest(tb testing.TB, req *http.Request, body []byte) {
	tb.Helper()
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		tb.Errorf("%s %s: no operation in openapi.yaml: %v", req.Method, req.URL.Path, err)
		return
	}
	clone := req.Clone(req.Context())
	clone.Body = io.NopCloser(bytes.NewReader(body))
	clone.ContentLength = int64(len(body))
	input := &openapi3filter.RequestValidationInput{
		Request:    clone,
		PathParams: params,
		Route:      route,
		Options:    v.options(),
	}
	if err := openapi3filter.ValidateRequest(req.Context(), input); err != nil {
		tb.Errorf("%s %s: request does not match openapi.yaml: %v", req.Method, req.URL.Path, err)
	}
}

// ValidateResponse validates against api's embedded document; see
// Validator.ValidateResponse.
func ValidateResponse(tb testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	tb.Helper()
	NewValidator(tb).ValidateResponse(tb, req, status, header, body)
}

// ValidateRecorder validates what a handler wrote to rec in answer to req.
func ValidateRecorder(tb testing.TB, req *http.Request, rec *httptest.ResponseRecorder) {
	tb.Helper()
	res := rec.Result()
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	NewValidator(tb).ValidateResponse(tb, req, res.StatusCode, res.Header, body)
}

func decodeJSON(body []byte) (any, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("body is not JSON: %w", err)
	}
	return v, nil
}

func truncate(b []byte) string {
	const max = 2000
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
