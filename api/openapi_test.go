package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/prescripto/prescripto/api"
	"github.com/prescripto/prescripto/api/apitest"
)

func TestOpenAPIDocumentLoadsAndValidates(t *testing.T) {
	t.Parallel()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPIDocument())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
}

// Every route of the contract (docs/api.md, TestDocsMatchOpenAPI) that the
// server routes, as method and path below the base path.
var contractRoutes = []string{
	"POST /auth/register",
	"POST /auth/login",
	"GET /me",
	"PATCH /me",
	"POST /admin/users",
	"POST /auth/logout",
	"POST /auth/forgot-password",
	"POST /auth/reset-password",
	"POST /auth/verify-email",
	"POST /auth/resend-verification",
	"POST /me/password",
	"POST /admin/users/{id}/deactivate",
	"POST /admin/users/{id}/activate",
	"GET /doctors",
	"GET /doctors/{id}",
	"GET /doctors/{id}/slots",
	"GET /specialities",
	"POST /admin/doctors",
	"PATCH /admin/doctors/{id}",
	"PUT /doctors/{id}/schedule",
	"POST /doctors/{id}/time-off",
	"PATCH /doctor/profile",
	"GET /doctor/dashboard",
	"GET /admin/dashboard",
	"POST /appointments",
	"GET /appointments",
	"GET /appointments/{id}",
	"POST /appointments/{id}/cancel",
	"POST /appointments/{id}/reschedule",
	"POST /appointments/{id}/complete",
	"POST /appointments/{id}/no-show",
	"POST /appointments/{id}/payment",
	"POST /payments/razorpay/verify",
	"POST /webhooks/razorpay",
	"GET /admin/payments",
	"GET /admin/notifications",
	"GET /me/calendar-feed",
	"DELETE /me/calendar-feed",
	"GET /calendar/{token}.ics",
	"GET /appointments/{id}/calendar.ics",
	"POST /admin/notifications/{id}/retry",
	"GET /audit/streams/{stream}/events",
	"GET /audit/doctors/{id}/schedule",
	"GET /audit/appointments/{id}/history",
	"GET /audit/verify",
	"GET /analytics/bookings",
	"GET /analytics/utilisation",
	"GET /healthz",
	"GET /readyz",
	"GET /metrics",
	"GET /admin/projections",
	"POST /admin/projections/{name}/rebuild",
	"GET /openapi.yaml",
	"GET /me/export",
	"POST /admin/patients/{id}/erase",
}

func TestOpenAPIDocumentCoversContract(t *testing.T) {
	t.Parallel()
	doc := apitest.NewValidator(t).Document()
	var have []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			have = append(have, method+" "+path)
			if op.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
			}
			if op.Responses.Default() == nil {
				t.Errorf("%s %s has no default (problem) response", method, path)
			}
			if method == http.MethodPost && op.RequestBody != nil {
				for _, mt := range op.RequestBody.Value.Content {
					s := mt.Schema.Value
					if path != "/webhooks/razorpay" && (s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has) {
						t.Errorf("%s %s: request body must set additionalProperties: false", method, path)
					}
				}
			}
		}
	}
	for _, r := range contractRoutes {
		if !slices.Contains(have, r) {
			t.Errorf("openapi.yaml lacks %s", r)
		}
	}
	if len(have) != len(contractRoutes) {
		slices.Sort(have)
		t.Errorf("openapi.yaml has %d operations, contract lists %d: %v", len(have), len(contractRoutes), have)
	}
	if _, ok := doc.Components.SecuritySchemes["bearerAuth"]; !ok {
		t.Error("no bearerAuth security scheme")
	}
	for _, name := range []string{"IdempotencyKey", "MinPosition"} {
		if _, ok := doc.Components.Parameters[name]; !ok {
			t.Errorf("no %s parameter", name)
		}
	}
}

func TestOpenAPIHandlerServesDocument(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodGet, "/api/v1/openapi.yaml", nil)
	rec := httptest.NewRecorder()
	api.OpenAPIHandler().ServeHTTP(rec, req)
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type %q", ct)
	}
	if !strings.HasPrefix(string(body), "openapi: 3.1.0") {
		t.Errorf("body starts %q", body[:min(40, len(body))])
	}
	apitest.ValidateResponse(t, req, res.StatusCode, res.Header, body)
}

// The validator accepts what the API writes and rejects what it must not.
func TestValidatorOnProblemsAndAppointments(t *testing.T) {
	t.Parallel()
	v := apitest.NewValidator(t)

	// A problem written by WriteError for an unknown appointment.
	req := httptest.NewRequest(http.MethodGet, "/api/v1/appointments/0190-x", nil)
	rec := httptest.NewRecorder()
	api.WriteError(rec, req, api.ErrRouteNotFound)
	body, _ := io.ReadAll(rec.Result().Body)
	if err := v.CheckResponse(req, rec.Code, rec.Header(), body); err != nil {
		t.Errorf("404 problem: %v", err)
	}

	// A 401 must carry WWW-Authenticate.
	rec = httptest.NewRecorder()
	api.WriteError(rec, req, api.ErrTokenMissing)
	body, _ = io.ReadAll(rec.Result().Body)
	if err := v.CheckResponse(req, rec.Code, rec.Header(), body); err != nil {
		t.Errorf("401 problem: %v", err)
	}
	h := rec.Header().Clone()
	h.Del("WWW-Authenticate")
	if err := v.CheckResponse(req, rec.Code, h, body); err == nil {
		t.Error("401 without WWW-Authenticate passed validation")
	}

	// An unknown route's 404 still has to be a problem.
	req = httptest.NewRequest(http.MethodGet, "/api/v1/nope", nil)
	rec = httptest.NewRecorder()
	api.NotFound(rec, req)
	body, _ = io.ReadAll(rec.Result().Body)
	if err := v.CheckResponse(req, rec.Code, rec.Header(), body); err != nil {
		t.Errorf("route 404: %v", err)
	}

	appt := `{"id":"a1","doctorId":"d1","doctorName":"Dr A","patientId":"p1","patientName":"P",
		"start":"2026-11-25T04:30:00Z","end":"2026-11-25T05:00:00Z","timezone":"Asia/Kolkata","status":"confirmed","fees":50000,
		"currency":"INR","payment":{"status":"not_required","orderId":null,"paymentId":null,"amount":0,"refundedAmount":0},
		"createdAt":"2026-11-20T10:00:00Z","cancelReason":null,"position":42}`
	req = httptest.NewRequest(http.MethodPost, "/api/v1/appointments", nil)
	hdr := http.Header{"Content-Type": {"application/json"}}
	if err := v.CheckResponse(req, http.StatusCreated, hdr, []byte(appt)); err != nil {
		t.Errorf("valid appointment: %v", err)
	}
	for name, bad := range map[string]string{
		"no position":    strings.Replace(appt, `,"position":42`, "", 1),
		"bad status":     strings.Replace(appt, `"confirmed"`, `"booked"`, 1),
		"float fees":     strings.Replace(appt, `50000`, `500.5`, 1),
		"local instant":  strings.Replace(appt, `2026-11-25T04:30:00Z`, `2026-11-25 04:30`, 1),
		"missing cancel": strings.Replace(appt, `"cancelReason":null,`, "", 1),
		"no timezone":    strings.Replace(appt, `"timezone":"Asia/Kolkata",`, "", 1),
		"empty timezone": strings.Replace(appt, `"Asia/Kolkata"`, `""`, 1),
	} {
		if err := v.CheckResponse(req, http.StatusCreated, hdr, []byte(bad)); err == nil {
			t.Errorf("%s: invalid appointment passed validation", name)
		}
	}
	// Undocumented statuses fail.
	if err := v.CheckResponse(req, http.StatusTeapot, hdr, []byte(`{}`)); err == nil {
		// default covers it only as problem+json
		t.Error("418 application/json passed validation")
	}
}

func TestValidatorRejectsUnknownOperation(t *testing.T) {
	t.Parallel()
	v := apitest.NewValidator(t)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/nope", nil)
	if err := v.CheckResponse(req, http.StatusOK, http.Header{"Content-Type": {"application/json"}}, []byte(`{}`)); err == nil {
		t.Error("a 200 from an undocumented route passed validation")
	}
}
