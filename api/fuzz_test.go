package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
)

// fuzzBodies are the request types of the routes, in a fixed order (the
// committed corpus picks them by index: append, never reorder).
var fuzzBodies = []func() any{
	func() any { return new(registerRequest) },
	func() any { return new(loginRequest) },
	func() any { return new(tokenRequest) },
	func() any { return new(emailRequest) },
	func() any { return new(resetPasswordRequest) },
	func() any { return new(changePasswordRequest) },
	func() any { return new(patchMeRequest) },
	func() any { return new(createStaffRequest) },
	func() any { return new(bookRequest) },
	func() any { return new(cancelRequest) },
	func() any { return new(rescheduleRequest) },
	func() any { return new(noBody) },
	func() any { return new(createDoctorRequest) },
	func() any { return new(adminPatchDoctorRequest) },
	func() any { return new(ownProfileRequest) },
	func() any { return new(scheduleRequest) },
	func() any { return new(timeOffRequest) },
	func() any { return new(verifyRequest) },
}

// FuzzDecodeJSON feeds arbitrary bodies and Content-Types to DecodeJSON
// and DecodeOptionalJSON with each route's request type. Whatever arrives,
// the answer is success or an error ProblemFor maps to a 4xx with a code
// (a 500 here would be a client able to cause an internal error), and a
// body that decoded re-encodes and decodes to the same value.
func FuzzDecodeJSON(f *testing.F) {
	for i, body := range []string{
		`{"name":"Ann","email":"ann@example.test","password":"correct-horse-9"}`,
		`{"email":"ann@example.test","password":"x"}`,
		`{"token":"abc.def"}`,
		`{"email":"a@b.c"}`,
		`{"token":"abc.def","password":"correct-horse-9"}`,
		`{"currentPassword":"a","newPassword":"correct-horse-9"}`,
		`{"name":"Ann","phone":"+91 98765 43210","address":"1 Road","gender":"female","dob":"1990-01-02"}`,
		`{"name":"Rex","email":"rex@example.test","password":"correct-horse-9","role":"auditor"}`,
		`{"doctorId":"d1","start":"2026-11-27T04:30:00Z"}`,
		`{"reason":"changed my mind"}`,
		`{"start":"2026-11-27T05:00:00Z"}`,
		`{}`,
		`{"name":"Dr. X","email":"x@example.test","password":"correct-horse-9","speciality":"Neurologist","fees":500,"currency":"INR","timezone":"Asia/Kolkata"}`,
		`{"fees":700,"available":false}`,
		`{"about":"Seen it all","fees":800}`,
		`{"timezone":"Asia/Kolkata","slotMinutes":30,"bookingWindowDays":30,"minNoticeMinutes":30,"paymentPolicy":"none","weekly":[{"weekday":1,"start":"10:00","end":"21:00"}]}`,
		`{"from":"2026-12-01T00:00:00Z","to":"2026-12-02T00:00:00Z","reason":"leave"}`,
		`{"razorpay_order_id":"order_1","razorpay_payment_id":"pay_1","razorpay_signature":"00ff"}`,
	} {
		f.Add(uint8(i), "application/json", []byte(body))
	}
	f.Add(uint8(8), "application/json; charset=latin1", []byte(`{"doctorId":"d1"}`))
	f.Add(uint8(8), "text/plain", []byte(`{}`))
	f.Add(uint8(8), "", []byte(`{}`))
	f.Add(uint8(8), "application/json", []byte(`null`))
	f.Add(uint8(8), "application/json", []byte(`{"doctorId":"d1"} {}`))
	f.Add(uint8(15), "application/json", []byte(`{"weekly":{"weekday":1}}`))
	f.Add(uint8(13), "application/json", []byte(`{"fees":1e400}`))
	f.Fuzz(func(t *testing.T, kind uint8, contentType string, body []byte) {
		newDst := fuzzBodies[int(kind)%len(fuzzBodies)]
		for _, optional := range []bool{false, true} {
			r := httptest.NewRequest(http.MethodPost, "/api/v1/x", bytes.NewReader(body))
			if contentType != "" {
				r.Header.Set("Content-Type", contentType)
			}
			dst := newDst()
			var err error
			present := true
			if optional {
				present, err = DecodeOptionalJSON(httptest.NewRecorder(), r, dst)
			} else {
				err = DecodeJSON(httptest.NewRecorder(), r, dst)
			}
			if err != nil {
				p := ProblemFor(err)
				if p.Status < 400 || p.Status > 499 || p.Code == "" {
					t.Fatalf("%T from %q (%s): %v mapped to %d %q", dst, body, contentType, err, p.Status, p.Code)
				}
				continue
			}
			if !present {
				continue
			}
			again, merr := json.Marshal(dst)
			if merr != nil {
				t.Fatalf("%T decoded from %q does not encode: %v", dst, body, merr)
			}
			back := newDst()
			if err := json.Unmarshal(again, back); err != nil {
				t.Fatalf("%T re-encoded as %s does not decode: %v", dst, again, err)
			}
			if again2, _ := json.Marshal(back); !bytes.Equal(again, again2) {
				t.Fatalf("%T round trip: %s then %s", dst, again, again2)
			}
		}
	})
}

// fuzzKinds are the error kinds FuzzProblemFor builds errors of; nil is a
// *domain.Error of no kind (a programming error: 500).
var fuzzKinds = []error{nil, domain.ErrInvalid, domain.ErrUnprocessable, domain.ErrNotFound, domain.ErrConflict,
	domain.ErrForbidden, domain.ErrUnauthorized, domain.ErrUnavailable}

// FuzzProblemFor builds errors of every shape a handler can return (domain
// errors of each kind with arbitrary codes and messages, api sentinels,
// context errors, plain errors), wrapped a few times, and writes them with
// WriteError. The problem is always valid problem+json whose status and
// code agree with the mapping, and the text of a wrapping error or of an
// unexpected error never reaches the client.
func FuzzProblemFor(f *testing.F) {
	f.Add(uint8(0), uint8(1), "slot_unavailable", "the slot is already taken", "store: append", uint8(1))
	f.Add(uint8(1), uint8(0), "", "", "secret dsn=mongodb://user:pw@host", uint8(3))
	f.Add(uint8(2), uint8(0), "", "", "", uint8(0))
	f.Add(uint8(3), uint8(0), "", "", "", uint8(2))
	f.Add(uint8(4), uint8(0), "", "field \"x\"", "", uint8(0))
	f.Add(uint8(0), uint8(0), "weird", "no kind", "", uint8(1))
	f.Fuzz(func(t *testing.T, shape, kind uint8, code, message, wrapText string, wraps uint8) {
		var err error
		switch shape % 5 {
		case 0:
			err = domain.NewError(fuzzKinds[int(kind)%len(fuzzKinds)], code, message)
		case 1:
			err = errors.New(message)
		case 2:
			err = context.DeadlineExceeded
		case 3:
			err = context.Canceled
		case 4:
			sentinels := []*HTTPError{ErrBodyTooLarge, ErrMalformedJSON, ErrInvalidInput, ErrTokenInvalid, ErrRouteNotFound, ErrRateLimited}
			err = sentinels[int(kind)%len(sentinels)].WithDetail("%s", message).WithCause(errors.New(wrapText))
		}
		for range wraps % 4 {
			err = fmt.Errorf("%s: %w", wrapText, err)
		}
		p := ProblemFor(err)
		if p.Status < 400 || p.Status > 599 || p.Code == "" || p.Type != ProblemTypeBase+p.Code || p.Title == "" {
			t.Fatalf("%v: problem %+v", err, p)
		}
		var de *domain.Error
		if errors.As(err, &de) && de.Kind != nil && de.Code != "" && p.Code != de.Code {
			t.Fatalf("%v: code %q, want the domain's %q", err, p.Code, de.Code)
		}

		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/api/v1/x", nil)
		WriteError(w, r, err)
		if ct := w.Header().Get("Content-Type"); ct != problemContentType {
			t.Fatalf("Content-Type %q", ct)
		}
		var got Problem
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("problem is not JSON: %v: %s", err, w.Body.Bytes())
		}
		if got.Status != w.Code || got.Code == "" {
			t.Fatalf("written %d, problem %+v", w.Code, got)
		}
		if w.Code == http.StatusUnauthorized && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("401 without a Bearer challenge")
		}
		// A wrapping error's text and an unexpected error's message are
		// for logs: a 500 says nothing else than internalDetail.
		if w.Code == http.StatusInternalServerError && got.Detail != internalDetail {
			t.Fatalf("500 leaks %q", got.Detail)
		}
		if len(wrapText) > 3 && wraps%4 > 0 && !strings.Contains(message, wrapText) && !strings.Contains(code, wrapText) &&
			strings.Contains(got.Detail, wrapText) {
			t.Fatalf("the wrapping text %q reached the client: %q", wrapText, got.Detail)
		}
	})
}

// FuzzVerifyToken builds tokens from arbitrary headers, claims and
// signatures (signed with the real secret, another secret, or not at all)
// and sends arbitrary Authorization headers through Authenticate. A token
// authenticates only if it is HS256, signed with the secret, unexpired,
// ours (issuer, audience) and names a subject and a human role; nothing
// panics, and a refused header is a 401 invalid_token problem.
func FuzzVerifyToken(f *testing.F) {
	c := &clock{now: t0}
	tokens, err := NewTokens(testSecret, testIssuer, testAudience, time.Hour, c.Now)
	if err != nil {
		f.Fatal(err)
	}
	good := fmt.Sprintf(`{"iss":"prescripto","aud":["prescripto-api"],"sub":"u1","role":"patient","iat":%d,"nbf":%d,"exp":%d,"jti":"j"}`,
		t0.Unix(), t0.Unix(), t0.Add(time.Hour).Unix())
	hs := `{"alg":"HS256","typ":"JWT"}`
	f.Add(hs, good, uint8(0), "", "Bearer")
	f.Add(hs, good, uint8(1), "", "Bearer")
	f.Add(`{"alg":"none"}`, good, uint8(2), "", "Bearer")
	f.Add(`{"alg":"HS512"}`, good, uint8(0), "", "bearer")
	f.Add(hs, strings.Replace(good, `"patient"`, `"system"`, 1), uint8(0), "", "Bearer")
	f.Add(hs, strings.Replace(good, `"sub":"u1",`, ``, 1), uint8(0), "", "Bearer")
	f.Add(hs, `{"exp":1e300}`, uint8(0), "", "Bearer")
	f.Add(hs, good, uint8(3), "Bearer a.b.c", "")
	f.Add(hs, good, uint8(3), "Basic dXNlcjpwYXNz", "")
	f.Fuzz(func(t *testing.T, header, claims string, sigMode uint8, raw, scheme string) {
		enc := base64.RawURLEncoding
		signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
		var token string
		switch sigMode % 4 {
		case 0:
			m := hmac.New(sha256.New, testSecret)
			m.Write([]byte(signing))
			token = signing + "." + enc.EncodeToString(m.Sum(nil))
		case 1:
			m := hmac.New(sha256.New, []byte("another-secret-another-secret-!!"))
			m.Write([]byte(signing))
			token = signing + "." + enc.EncodeToString(m.Sum(nil))
		case 2:
			token = signing + "."
		case 3:
			token = raw
		}
		got, err := tokens.Verify(token)
		if err == nil {
			checkAccepted(t, token, got, sigMode%4, header, c.Now())
		} else if !errors.Is(err, ErrTokenInvalid) {
			t.Fatalf("Verify(%q): %v is not ErrTokenInvalid", token, err)
		}

		// The same through the middleware, as an Authorization header.
		value := raw
		if sigMode%4 != 3 {
			value = scheme + " " + token
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return // net/http sends no such header
		}
		var reached *Principal
		h := tokens.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				t.Fatalf("Authorization %q: handler reached without a principal", value)
			}
			reached = &p
		}))
		r := httptest.NewRequest(http.MethodGet, "/api/v1/me", nil)
		r.Header.Set("Authorization", value)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if reached == nil {
			if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `"code":"invalid_token"`) {
				t.Fatalf("Authorization %q refused with %d %s", value, w.Code, w.Body.String())
			}
			return
		}
		tok, ok := bearerToken([]string{value})
		if !ok {
			t.Fatalf("Authorization %q authenticated without a bearer token", value)
		}
		claimsOK, err := tokens.Verify(tok)
		if err != nil || claimsOK.Subject != reached.UserID || claimsOK.Role != reached.Role {
			t.Fatalf("Authorization %q authenticated as %+v (verify: %v)", value, reached, err)
		}
	})
}

// checkAccepted fails t unless an accepted token is one the engine could
// have issued.
func checkAccepted(t *testing.T, token string, c *Claims, sigMode uint8, header string, now time.Time) {
	t.Helper()
	if sigMode == 1 || sigMode == 2 {
		t.Fatalf("token %q accepted without the secret's signature", token)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q accepted with %d parts", token, len(parts))
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatalf("token %q accepted with an undecodable header", token)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hb, &h) != nil || h.Alg != "HS256" {
		t.Fatalf("token %q accepted with header %s", token, hb)
	}
	m := hmac.New(sha256.New, testSecret)
	m.Write([]byte(parts[0] + "." + parts[1]))
	if sig, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil || !hmac.Equal(sig, m.Sum(nil)) {
		t.Fatalf("token %q accepted with a wrong signature", token)
	}
	switch {
	case c.Subject == "":
		t.Fatalf("token %q accepted without a subject", token)
	case !c.Role.Valid() || c.Role == domain.RoleSystem:
		t.Fatalf("token %q accepted with role %q", token, c.Role)
	case c.ExpiresAt == nil || !c.ExpiresAt.Add(TokenLeeway).After(now):
		t.Fatalf("token %q accepted with exp %v at %v", token, c.ExpiresAt, now)
	case c.Issuer != testIssuer || len(c.Audience) == 0:
		t.Fatalf("token %q accepted from issuer %q, audience %v", token, c.Issuer, c.Audience)
	}
}
