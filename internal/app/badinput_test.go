package app_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/prescripto/prescripto/internal/testenv"
)

// mailedToken is a well-formed verification or reset token naming stream
// (as the engine makes them) with a random secret: a guess.
func mailedToken(stream string) string {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	return base64.RawURLEncoding.EncodeToString([]byte(stream)) + "." + base64.RawURLEncoding.EncodeToString(secret)
}

// adminID is the id of the Env's admin.
func adminID(t *testing.T, e *testenv.Env) string {
	t.Helper()
	id, _ := e.Get(t, "/me", e.AdminToken).Must(t, http.StatusOK).Map(t)["id"].(string)
	return id
}

// forge signs claims with method and key, as an attacker would.
func forge(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// claimsFor are well-formed claims for user id with role, valid at now.
func claimsFor(id, role string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "prescripto", "aud": "prescripto-api", "sub": id, "role": role,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "forged",
	}
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// TestBadInput sends what newcomers and attackers send. Every answer must be
// the documented problem (status and code, application/problem+json with
// type, title, status, detail and code), never a 500.
func TestBadInput(t *testing.T) {
	t.Parallel()
	badInput(t, testenv.Options{})
}

// TestRolesBadInput: the same through an api process of the production
// wiring (the projections run in other processes).
func TestRolesBadInput(t *testing.T) {
	t.Parallel()
	badInput(t, testenv.Options{Production: true, Roles: true})
}

func badInput(t *testing.T, o testenv.Options) {
	e := testenv.Start(t, o)
	d := e.NewDoctor(t, "Dr. Andrew Williams", "Neurologist")
	p := e.Register(t, "Ivan Patient")
	appt := e.MustBook(t, p.Token, d.ID, testenv.At(2, 10, 0))
	other := e.Register(t, "Olive Other")
	d2 := e.NewDoctor(t, "Dr. Second Opinion", "Neurologist")
	locked := e.NewDoctor(t, "Dr. Locked Out", "Neurologist")
	e.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/admin/doctors/" + locked.ID, Token: e.AdminToken, Body: map[string]any{"available": false}}).Must(t, http.StatusOK)
	now := testenv.DefaultNow

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := claimsFor(p.User.ID, "patient", now)
	// The right secret with the right claims works: the forgeries below
	// fail for the reason they name, not for a mistake of this test.
	e.Get(t, "/me", forge(t, jwt.SigningMethodHS256, testenv.Secret, good)).Must(t, http.StatusOK)

	book := func(start time.Time) map[string]string {
		return map[string]string{"doctorId": d.ID, "start": testenv.RFC3339(start)}
	}
	schedule := func(kv ...any) map[string]any {
		s := map[string]any{"timezone": testenv.Zone, "slotMinutes": 30, "bookingWindowDays": 30, "minNoticeMinutes": 30,
			"paymentPolicy": "none", "weekly": []map[string]any{{"weekday": 1, "start": "10:00", "end": "21:00"}}}
		for i := 0; i < len(kv); i += 2 {
			s[kv[i].(string)] = kv[i+1]
		}
		return s
	}
	timeOff := func(from, to string) map[string]any { return map[string]any{"from": from, "to": to} }
	register := func(name, email, password string) map[string]string {
		return map[string]string{"name": name, "email": email, "password": password}
	}
	big := strings.Repeat("a", 1<<20)
	event := `{"entity":"event","event":"subscription.charged","contains":[],"payload":{},"created_at":1}`
	slots := "/doctors/" + d.ID + "/slots"

	type tc struct {
		name   string
		req    testenv.Req
		status int
		code   string
	}
	pt := p.Token
	at := e.AdminToken
	post := func(path, token string, body any) testenv.Req {
		return testenv.Req{Method: http.MethodPost, Path: path, Token: token, Body: body}
	}
	get := func(path, token string) testenv.Req {
		return testenv.Req{Method: http.MethodGet, Path: path, Token: token}
	}
	put := func(path, token string, body any) testenv.Req {
		return testenv.Req{Method: http.MethodPut, Path: path, Token: token, Body: body}
	}
	patch := func(path, token string, body any) testenv.Req {
		return testenv.Req{Method: http.MethodPatch, Path: path, Token: token, Body: body}
	}
	hdr := func(q testenv.Req, kv ...string) testenv.Req {
		q.Header = http.Header{}
		for i := 0; i < len(kv); i += 2 {
			q.Header.Set(kv[i], kv[i+1])
		}
		return q
	}
	auth := func(value string) testenv.Req { return hdr(get("/me", ""), "Authorization", value) }

	cases := []tc{
		// Bodies.
		{"malformed json", post("/appointments", pt, `{"doctorId":`), 400, "malformed_json"},
		{"trailing comma", post("/appointments", pt, `{"doctorId":"x",}`), 400, "malformed_json"},
		{"two values", post("/appointments", pt, `{} {}`), 400, "malformed_json"},
		{"not an object", post("/appointments", pt, `["x"]`), 400, "invalid_type"},
		{"null body", post("/appointments", pt, `null`), 400, "invalid_type"},
		{"empty body", post("/appointments", pt, ``), 400, "empty_body"},
		{"unknown field status", post("/appointments", pt, map[string]any{"doctorId": d.ID, "start": testenv.RFC3339(testenv.At(3, 10, 0)), "status": "completed"}), 400, "unknown_field"},
		{"unknown field patientId", post("/appointments", pt, map[string]any{"doctorId": d.ID, "start": testenv.RFC3339(testenv.At(3, 10, 0)), "patientId": "someone-else"}), 400, "unknown_field"},
		{"unknown field fees", post("/appointments", pt, map[string]any{"doctorId": d.ID, "start": testenv.RFC3339(testenv.At(3, 10, 0)), "fees": 0}), 400, "unknown_field"},
		{"register as admin", post("/auth/register", "", map[string]string{"name": "Mallory", "email": "mallory@example.test", "password": testenv.Password, "role": "admin"}), 400, "unknown_field"},
		{"oversized body", post("/appointments", pt, `{"doctorId":"`+big+`"}`), 413, "body_too_large"},
		{"oversized register", post("/auth/register", "", `{"name":"`+big+`"}`), 413, "body_too_large"},
		{"doctorId a number", post("/appointments", pt, map[string]any{"doctorId": 42, "start": testenv.RFC3339(testenv.At(3, 10, 0))}), 400, "invalid_type"},
		{"start a number", post("/appointments", pt, map[string]any{"doctorId": d.ID, "start": 1893456000}), 400, "invalid_type"},
		{"fees a string", patch("/admin/doctors/"+d.ID, at, map[string]any{"fees": "500"}), 400, "invalid_type"},
		{"available a string", patch("/admin/doctors/"+d.ID, at, map[string]any{"available": "no"}), 400, "invalid_type"},
		{"weekly an object", put("/doctors/"+d.ID+"/schedule", at, schedule("weekly", map[string]any{"weekday": 1})), 400, "invalid_type"},
		{"slotMinutes fractional", put("/doctors/"+d.ID+"/schedule", at, schedule("slotMinutes", 30.5)), 400, "invalid_type"},
		{"no content type", hdr(testenv.Req{Method: http.MethodPost, Path: "/appointments", Token: pt, Body: book(testenv.At(3, 10, 0)), NoContentType: true}), 415, "unsupported_media_type"},
		{"text/plain", hdr(post("/appointments", pt, book(testenv.At(3, 10, 0))), "Content-Type", "text/plain"), 415, "unsupported_media_type"},
		{"form encoded login", hdr(post("/auth/login", "", "email=a%40b.c&password=x"), "Content-Type", "application/x-www-form-urlencoded"), 415, "unsupported_media_type"},
		{"gzip body", hdr(post("/appointments", pt, book(testenv.At(3, 10, 0))), "Content-Encoding", "gzip"), 415, "unsupported_media_type"},

		// Booking rules.
		{"missing doctorId", post("/appointments", pt, map[string]string{"start": testenv.RFC3339(testenv.At(3, 10, 0))}), 400, "invalid_input"},
		{"missing start", post("/appointments", pt, map[string]string{"doctorId": d.ID}), 400, "invalid_input"},
		{"start not RFC 3339", post("/appointments", pt, map[string]string{"doctorId": d.ID, "start": "tomorrow 10am"}), 400, "invalid_input"},
		{"start a date", post("/appointments", pt, map[string]string{"doctorId": d.ID, "start": testenv.Date(3)}), 400, "invalid_input"},
		{"start year 9999", post("/appointments", pt, map[string]string{"doctorId": d.ID, "start": "9999-01-01T04:30:00Z"}), 400, "invalid_input"},
		{"past slot", post("/appointments", pt, book(testenv.At(-1, 10, 0))), 422, "in_the_past"},
		{"off-grid slot", post("/appointments", pt, book(testenv.At(3, 10, 10))), 422, "outside_schedule"},
		{"off-grid seconds", post("/appointments", pt, map[string]string{"doctorId": d.ID, "start": testenv.At(3, 10, 0).Add(time.Second).Format(time.RFC3339)}), 422, "outside_schedule"},
		{"outside hours", post("/appointments", pt, book(testenv.At(3, 21, 0))), 422, "outside_schedule"},
		{"beyond window", post("/appointments", pt, book(testenv.At(31, 10, 0))), 422, "beyond_booking_window"},
		{"unknown doctor booking", post("/appointments", pt, map[string]string{"doctorId": "no-such-doctor", "start": testenv.RFC3339(testenv.At(3, 10, 0))}), 404, "doctor_not_found"},
		{"slot taken", post("/appointments", other.Token, book(appt.Start)), 409, "slot_unavailable"},
		{"my own time at another doctor", post("/appointments", pt, map[string]string{"doctorId": d2.ID, "start": testenv.RFC3339(appt.Start)}), 409, "overlapping_appointment"},

		// Queries.
		{"from not a date", get(slots+"?from=03/03/2031", ""), 400, "invalid_query"},
		{"from impossible date", get(slots+"?from=2031-02-30", ""), 400, "invalid_query"},
		{"from year 1", get(slots+"?from=0001-01-01", ""), 400, "invalid_query"},
		{"days 0", get(slots+"?days=0", ""), 400, "invalid_query"},
		{"days 32", get(slots+"?days=32", ""), 400, "invalid_query"},
		{"days x", get(slots+"?days=x", ""), 400, "invalid_query"},
		{"days -1", get(slots+"?days=-1", ""), 400, "invalid_query"},
		{"days huge", get(slots+"?days=99999999999999999999", ""), 400, "invalid_query"},
		{"available maybe", get("/doctors?available=maybe", ""), 400, "invalid_query"},
		{"q too long", get("/doctors?q="+strings.Repeat("x", 101), ""), 400, "invalid_query"},
		{"limit 0", get("/appointments?limit=0", pt), 400, "invalid_query"},
		{"limit 201", get("/appointments?limit=201", pt), 400, "invalid_query"},
		{"limit x", get("/appointments?limit=x", pt), 400, "invalid_query"},
		{"garbage cursor", get("/appointments?cursor=%25%25garbage", pt), 400, "invalid_cursor"},
		{"forged cursor", get("/appointments?cursor=eHl6", pt), 400, "invalid_cursor"},
		{"cursor overflow", get("/appointments?cursor=Yjk5OTk5OTk5OTk5OTk5OTk5OTk5OTk", pt), 400, "invalid_cursor"},
		{"status unknown", get("/appointments?status=booked", pt), 400, "invalid_input"},
		{"appointments from a date", get("/appointments?from=2031-03-01", pt), 400, "invalid_query"},
		{"appointments to before from", get("/appointments?from=2031-03-05T00:00:00Z&to=2031-03-04T00:00:00Z", pt), 400, "invalid_input"},
		{"analytics from not a date", get("/analytics/bookings?from=03/01/2031&to=2031-03-31", at), 400, "invalid_query"},
		{"analytics impossible date", get("/analytics/bookings?from=2031-02-30&to=2031-03-31", at), 400, "invalid_query"},
		{"analytics to an instant", get("/analytics/utilisation?from=2031-03-01&to=2031-03-31T00:00:00Z", at), 400, "invalid_query"},
		{"analytics without from", get("/analytics/bookings?to=2031-03-31", at), 400, "invalid_input"},
		{"analytics without dates", get("/analytics/utilisation", at), 400, "invalid_input"},
		{"analytics to before from", get("/analytics/bookings?from=2031-03-05&to=2031-03-04", at), 400, "invalid_input"},
		{"analytics 367 days", get("/analytics/utilisation?from=2031-01-01&to=2032-01-02", at), 400, "invalid_input"},
		{"analytics year 1 to 9999", get("/analytics/bookings?from=0001-01-01&to=9999-12-31", at), 400, "invalid_input"},
		{"analytics unknown groupBy", get("/analytics/bookings?from=2031-03-01&to=2031-03-31&groupBy=week", at), 400, "invalid_input"},
		{"analytics groupBy case", get("/analytics/bookings?from=2031-03-01&to=2031-03-31&groupBy=Doctor", at), 400, "invalid_input"},
		{"utilisation groupBy", get("/analytics/utilisation?from=2031-03-01&to=2031-03-31&groupBy=day", at), 400, "invalid_query"},
		{"bad X-Min-Position", hdr(get("/doctors", ""), "X-Min-Position", "abc"), 400, "invalid_header"},
		{"negative X-Min-Position", hdr(get("/appointments", pt), "X-Min-Position", "-1"), 400, "invalid_header"},
		{"fractional X-Min-Position", hdr(get(slots, ""), "X-Min-Position", "1.5"), 400, "invalid_header"},
		{"X-Min-Position beyond the head", hdr(get("/doctors", ""), "X-Min-Position", "18446744073709551615"), 400, "invalid_position"},
		{"X-Min-Position just beyond the head", hdr(get(slots, ""), "X-Min-Position", "1000000000"), 400, "invalid_position"},
		{"idempotency key too long", hdr(post("/appointments", pt, book(testenv.At(3, 10, 0))), "Idempotency-Key", strings.Repeat("k", 256)), 400, "invalid_header"},
		{"idempotency key not text", hdr(post("/appointments", pt, book(testenv.At(3, 10, 0))), "Idempotency-Key", "clé-1"), 400, "invalid_header"},

		// Accounts.
		{"weak password", post("/auth/register", "", register("Judy", "judy@example.test", "short7!")), 400, "weak_password"},
		{"password over 72 bytes", post("/auth/register", "", register("Judy", "judy@example.test", strings.Repeat("p", 73))), 400, "weak_password"},
		{"bad email", post("/auth/register", "", register("Judy", "not-an-email", testenv.Password)), 400, "invalid_input"},
		{"email without domain dot", post("/auth/register", "", register("Judy", "judy@localhost", testenv.Password)), 400, "invalid_input"},
		{"email with display name", post("/auth/register", "", register("Judy", "Judy <judy@example.test>", testenv.Password)), 400, "invalid_input"},
		{"empty name", post("/auth/register", "", register("  ", "judy@example.test", testenv.Password)), 400, "invalid_input"},
		{"CR LF in a name", post("/auth/register", "", register("Judy\r\nBcc: all@example.test", "judy@example.test", testenv.Password)), 400, "invalid_input"},
		{"NUL in a name", post("/auth/register", "", register("Judy\x00", "judy@example.test", testenv.Password)), 400, "invalid_input"},
		{"ANSI escape in a name", patch("/me", pt, map[string]string{"name": "\x1b[2J\x1b[31mJudy"}), 400, "invalid_input"},
		{"right-to-left override in an address", patch("/me", pt, map[string]string{"address": "12 Main St \u202Egnp.exe"}), 400, "invalid_input"},
		{"control characters in a cancel reason", post("/appointments/"+appt.ID+"/cancel", pt, map[string]string{"reason": "bye\x1b[0m"}), 400, "invalid_input"},
		{"isolate in a doctor's about", patch("/admin/doctors/"+d.ID, at, map[string]any{"about": "kind \u2067doctor"}), 400, "invalid_profile"},
		{"duplicate email", post("/auth/register", "", register("Ivan Again", p.User.Email, testenv.Password)), 409, "email_taken"},
		{"duplicate email other case", post("/auth/register", "", register("Ivan Again", strings.ToUpper(p.User.Email), testenv.Password)), 409, "email_taken"},
		{"wrong password", post("/auth/login", "", map[string]string{"email": p.User.Email, "password": "wrong-password"}), 401, "invalid_credentials"},
		{"unknown email", post("/auth/login", "", map[string]string{"email": "nobody@example.test", "password": testenv.Password}), 401, "invalid_credentials"},
		{"malformed login email", post("/auth/login", "", map[string]string{"email": "nobody", "password": testenv.Password}), 401, "invalid_credentials"},
		{"empty login", post("/auth/login", "", map[string]string{}), 401, "invalid_credentials"},
		{"me bad dob", patch("/me", pt, map[string]string{"dob": "1990-13-45"}), 400, "invalid_input"},
		{"me bad phone", patch("/me", pt, map[string]string{"phone": "call me maybe"}), 400, "invalid_input"},
		{"me empty name", patch("/me", pt, map[string]string{"name": ""}), 400, "invalid_input"},

		// Account lifecycle.
		{"forgot-password email a number", post("/auth/forgot-password", "", map[string]any{"email": 42}), 400, "invalid_type"},
		{"forgot-password unknown field", post("/auth/forgot-password", "", map[string]any{"email": p.User.Email, "role": "admin"}), 400, "unknown_field"},
		{"forgot-password email too long", post("/auth/forgot-password", "", map[string]any{"email": strings.Repeat("x", 250) + "@example.test"}), 400, "invalid_input"},
		{"forgot-password empty body", post("/auth/forgot-password", "", ``), 400, "empty_body"},
		{"reset-password garbage token", post("/auth/reset-password", "", map[string]string{"token": "garbage", "password": testenv.Password}), 400, "invalid_token"},
		{"reset-password forged token", post("/auth/reset-password", "", map[string]string{"token": mailedToken("patient-" + p.User.ID), "password": testenv.Password}), 400, "invalid_token"},
		{"reset-password token of a doctor stream", post("/auth/reset-password", "", map[string]string{"token": mailedToken("doctor-" + d.ID), "password": testenv.Password}), 400, "invalid_token"},
		{"reset-password token of nobody", post("/auth/reset-password", "", map[string]string{"token": mailedToken("patient-nobody"), "password": testenv.Password}), 400, "invalid_token"},
		{"reset-password weak password", post("/auth/reset-password", "", map[string]string{"token": mailedToken("patient-" + p.User.ID), "password": "short"}), 400, "weak_password"},
		{"reset-password token too long", post("/auth/reset-password", "", map[string]string{"token": strings.Repeat("a", 300) + "." + strings.Repeat("b", 43), "password": testenv.Password}), 400, "invalid_token"},
		{"verify-email garbage token", post("/auth/verify-email", "", map[string]string{"token": "garbage"}), 400, "invalid_token"},
		{"verify-email empty token", post("/auth/verify-email", "", map[string]string{"token": ""}), 400, "invalid_token"},
		{"verify-email forged token", post("/auth/verify-email", "", map[string]string{"token": mailedToken("patient-" + p.User.ID)}), 400, "invalid_token"},
		{"verify-email token a number", post("/auth/verify-email", "", map[string]any{"token": 7}), 400, "invalid_type"},
		{"resend-verification with a body field", post("/auth/resend-verification", pt, map[string]any{"email": "x@example.test"}), 400, "unknown_field"},
		{"me/password wrong current", post("/me/password", pt, map[string]string{"currentPassword": "wrong-password", "newPassword": "another-password-1"}), 403, "wrong_password"},
		{"me/password current over 72 bytes", post("/me/password", pt, map[string]string{"currentPassword": testenv.Password + strings.Repeat("x", 72), "newPassword": "another-password-1"}), 403, "wrong_password"},
		{"me/password weak new", post("/me/password", pt, map[string]string{"currentPassword": testenv.Password, "newPassword": "short"}), 400, "weak_password"},
		{"me/password missing fields", post("/me/password", pt, map[string]string{}), 400, "weak_password"},
		{"me/password unknown field", post("/me/password", pt, map[string]string{"currentPassword": testenv.Password, "newPassword": "another-password-1", "userId": "x"}), 400, "unknown_field"},
		{"deactivate an unknown user", post("/admin/users/no-such-user/deactivate", at, nil), 404, "account_not_found"},
		{"activate an unknown user", post("/admin/users/no-such-user/activate", at, nil), 404, "account_not_found"},
		{"deactivate oneself", post("/admin/users/"+adminID(t, e)+"/deactivate", at, nil), 409, "self_deactivation"},
		{"erase an unknown patient", post("/admin/patients/no-such-patient/erase", at, nil), 404, "account_not_found"},
		{"erase a doctor", post("/admin/patients/"+d.ID+"/erase", at, nil), 404, "account_not_found"},
		{"erase an overlong id", post("/admin/patients/"+strings.Repeat("p", 300)+"/erase", at, nil), 404, "account_not_found"},
		{"erase with a body field", post("/admin/patients/"+p.User.ID+"/erase", at, map[string]any{"keep": true}), 400, "unknown_field"},
		{"erase with a body that is not JSON", post("/admin/patients/"+p.User.ID+"/erase", at, "not json"), 400, "malformed_json"},
		{"deactivate with a body field", post("/admin/users/"+p.User.ID+"/deactivate", at, map[string]any{"active": false}), 400, "unknown_field"},
		{"doctor own profile: available after an admin's unavailable", patch("/doctor/profile", locked.Token, map[string]any{"available": true}), 403, "availability_locked"},

		// Tokens.
		{"no token", get("/me", ""), 401, "unauthorized"},
		{"garbled token", auth("Bearer not.a.token"), 401, "invalid_token"},
		{"not bearer", auth("Basic aXZhbjpwYXNzd29yZA=="), 401, "invalid_token"},
		{"bearer without token", auth("Bearer"), 401, "invalid_token"},
		{"two tokens", auth("Bearer a b"), 401, "invalid_token"},
		{"expired token", auth("Bearer " + forge(t, jwt.SigningMethodHS256, testenv.Secret, with(good, "iat", now.Add(-3*time.Hour).Unix(), "nbf", now.Add(-3*time.Hour).Unix(), "exp", now.Add(-2*time.Hour).Unix()))), 401, "invalid_token"},
		{"no exp", auth("Bearer " + forge(t, jwt.SigningMethodHS256, testenv.Secret, with(good, "exp", nil))), 401, "invalid_token"},
		{"not yet valid", auth("Bearer " + forge(t, jwt.SigningMethodHS256, testenv.Secret, with(good, "nbf", now.Add(time.Hour).Unix()))), 401, "invalid_token"},
		{"issued in the future", auth("Bearer " + forge(t, jwt.SigningMethodHS256, testenv.Secret, with(good, "iat", now.Add(time.Hour).Unix()))), 401, "invalid_token"},
		{"alg none", auth("Bearer " + forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good)), 401, "invalid_token"},
		{"alg none as admin", auth("Bearer " + forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, with(good, "role", "admin"))), 401, "invalid_token"},
		{"HS256 wrong key", auth("Bearer " + forge(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-another"), good)), 401, "invalid_token"},
		{"HS512 right key", auth("Bearer " + forge(t, jwt.SigningMethodHS512, testenv.Secret, good)), 401, "invalid_token"},
		{"RS256", auth("Bearer " + forge(t, jwt.SigningMethodRS256, rsaKey, good)), 401, "invalid_token"},
		{"wrong issuer", auth("Bearer " + forge(t, jwt.SigningMethodHS256, testenv.Secret, with(good, "iss", "evil"))), 401, "invalid_token"},
		{"wrong audience", auth("Bearer " + forge(t, jwt.SigningMethodHS256, testenv.Secret, with(good, "aud", "other-api"))), 401, "invalid_token"},
		{"system role", auth("Bearer " + forge(t, jwt.SigningMethodHS256, testenv.Secret, with(good, "role", "system"))), 401, "invalid_token"},
		{"unknown role", auth("Bearer " + forge(t, jwt.SigningMethodHS256, testenv.Secret, with(good, "role", "root"))), 401, "invalid_token"},
		{"no subject", auth("Bearer " + forge(t, jwt.SigningMethodHS256, testenv.Secret, with(good, "sub", nil))), 401, "invalid_token"},
		{"garbled token on a public route", hdr(get("/doctors", ""), "Authorization", "Bearer x"), 401, "invalid_token"},

		// Unknown things.
		{"unknown doctor", get("/doctors/no-such-doctor", ""), 404, "doctor_not_found"},
		{"unknown doctor slots", get("/doctors/no-such-doctor/slots", ""), 404, "doctor_not_found"},
		{"unknown doctor schedule", put("/doctors/no-such-doctor/schedule", at, schedule()), 404, "doctor_not_found"},
		{"unknown doctor time off", post("/doctors/no-such-doctor/time-off", at, timeOff(testenv.RFC3339(testenv.At(4, 0, 0)), testenv.RFC3339(testenv.At(5, 0, 0)))), 404, "doctor_not_found"},
		{"unknown doctor patch", patch("/admin/doctors/no-such-doctor", at, map[string]any{"about": "x"}), 404, "doctor_not_found"},
		{"unknown appointment", get("/appointments/no-such-appointment", pt), 404, "appointment_not_found"},
		{"unknown appointment cancel", post("/appointments/no-such-appointment/cancel", pt, nil), 404, "appointment_not_found"},
		{"unknown route", get("/nope", ""), 404, "not_found"},
		{"wrong method", testenv.Req{Method: http.MethodDelete, Path: "/appointments/" + appt.ID, Token: pt}, 405, "method_not_allowed"},

		// Schedules and time off.
		{"slotMinutes 3", put("/doctors/"+d.ID+"/schedule", at, schedule("slotMinutes", 3)), 400, "invalid_schedule"},
		{"slotMinutes 0", put("/doctors/"+d.ID+"/schedule", at, schedule("slotMinutes", 0)), 400, "invalid_schedule"},
		{"unknown zone", put("/doctors/"+d.ID+"/schedule", at, schedule("timezone", "Mars/Olympus_Mons")), 400, "invalid_schedule"},
		{"zone Local", put("/doctors/"+d.ID+"/schedule", at, schedule("timezone", "Local")), 400, "invalid_schedule"},
		{"no zone", put("/doctors/"+d.ID+"/schedule", at, schedule("timezone", "")), 400, "invalid_schedule"},
		{"weekday 8", put("/doctors/"+d.ID+"/schedule", at, schedule("weekly", []map[string]any{{"weekday": 8, "start": "10:00", "end": "12:00"}})), 400, "invalid_schedule"},
		{"weekday 0", put("/doctors/"+d.ID+"/schedule", at, schedule("weekly", []map[string]any{{"weekday": 0, "start": "10:00", "end": "12:00"}})), 400, "invalid_schedule"},
		{"hour 25", put("/doctors/"+d.ID+"/schedule", at, schedule("weekly", []map[string]any{{"weekday": 1, "start": "25:00", "end": "26:00"}})), 400, "invalid_schedule"},
		{"clock without colon", put("/doctors/"+d.ID+"/schedule", at, schedule("weekly", []map[string]any{{"weekday": 1, "start": "1000", "end": "1200"}})), 400, "invalid_schedule"},
		{"end before start", put("/doctors/"+d.ID+"/schedule", at, schedule("weekly", []map[string]any{{"weekday": 1, "start": "12:00", "end": "10:00"}})), 400, "invalid_schedule"},
		{"overlapping hours", put("/doctors/"+d.ID+"/schedule", at, schedule("weekly", []map[string]any{{"weekday": 1, "start": "10:00", "end": "12:00"}, {"weekday": 1, "start": "11:00", "end": "13:00"}})), 400, "invalid_schedule"},
		{"window 0", put("/doctors/"+d.ID+"/schedule", at, schedule("bookingWindowDays", 0)), 400, "invalid_schedule"},
		{"window 366", put("/doctors/"+d.ID+"/schedule", at, schedule("bookingWindowDays", 366)), 400, "invalid_schedule"},
		{"negative notice", put("/doctors/"+d.ID+"/schedule", at, schedule("minNoticeMinutes", -5)), 400, "invalid_schedule"},
		{"unknown payment policy", put("/doctors/"+d.ID+"/schedule", at, schedule("paymentPolicy", "sometimes")), 400, "invalid_schedule"},
		{"schedule unknown field", put("/doctors/"+d.ID+"/schedule", at, schedule("slots", 3)), 400, "unknown_field"},
		{"negative refund cutoff", put("/doctors/"+d.ID+"/schedule", at, schedule("refundCutoffHours", -1)), 400, "invalid_schedule"},
		{"refund cutoff over 30 days", put("/doctors/"+d.ID+"/schedule", at, schedule("refundCutoffHours", 721)), 400, "invalid_schedule"},
		{"refund cutoff a string", put("/doctors/"+d.ID+"/schedule", at, schedule("refundCutoffHours", "24")), 400, "invalid_type"},
		{"required without hold", put("/doctors/"+d.ID+"/schedule", at, schedule("paymentPolicy", "required", "holdMinutes", 0)), 400, "invalid_schedule"},

		// Payments.
		{"pay an unknown appointment", post("/appointments/no-such-appointment/payment", pt, nil), 404, "appointment_not_found"},
		{"pay with a body field", post("/appointments/"+appt.ID+"/payment", pt, map[string]any{"amount": 1}), 400, "unknown_field"},
		{"pay a clinic-paid appointment", post("/appointments/"+appt.ID+"/payment", pt, nil), 409, "payment_not_needed"},
		{"verify malformed", post("/payments/razorpay/verify", pt, `{"razorpay_order_id":`), 400, "malformed_json"},
		{"verify unknown field", post("/payments/razorpay/verify", pt, map[string]string{"razorpay_order_id": "order_1", "razorpay_payment_id": "pay_1", "razorpay_signature": "ab", "amount": "1"}), 400, "unknown_field"},
		{"verify without a signature", post("/payments/razorpay/verify", pt, map[string]string{"razorpay_order_id": "order_1", "razorpay_payment_id": "pay_1"}), 400, "invalid_input"},
		{"verify a forged signature", post("/payments/razorpay/verify", pt, map[string]string{"razorpay_order_id": "order_1", "razorpay_payment_id": "pay_1", "razorpay_signature": strings.Repeat("0", 64)}), 400, "bad_signature"},
		{"verify ids with slashes", post("/payments/razorpay/verify", pt, map[string]string{"razorpay_order_id": "../orders", "razorpay_payment_id": "pay_1", "razorpay_signature": "zz"}), 400, "bad_signature"},
		{"webhook unsigned", hdr(post("/webhooks/razorpay", "", `{"event":"payment.captured"}`), "X-Razorpay-Event-Id", "evt_1"), 400, "bad_signature"},
		{"webhook oversized", hdr(post("/webhooks/razorpay", "", `{"event":"`+big+`"}`), "X-Razorpay-Signature", "ab", "X-Razorpay-Event-Id", "evt_1"), 413, "body_too_large"},
		{"webhook signed, not json", hdr(post("/webhooks/razorpay", "", `not json`), "X-Razorpay-Signature", e.SignWebhook(`not json`), "X-Razorpay-Event-Id", "evt_1"), 400, "invalid_input"},
		{"webhook signed, no event id", hdr(post("/webhooks/razorpay", "", event), "X-Razorpay-Signature", e.SignWebhook(event)), 400, "invalid_header"},
		{"webhook signed, event id a path", hdr(post("/webhooks/razorpay", "", event), "X-Razorpay-Signature", e.SignWebhook(event), "X-Razorpay-Event-Id", "../x"), 400, "invalid_header"},
		{"admin payments: bad status", get("/admin/payments?status=lost", at), 400, "invalid_query"},
		{"admin payments: limit 0", get("/admin/payments?limit=0", at), 400, "invalid_query"},
		{"admin payments: forged cursor", get("/admin/payments?cursor=Zm9yZ2Vk", at), 400, "invalid_cursor"},

		// Audit.
		{"audit stream: from not a number", get("/audit/streams/doctor-"+d.ID+"/events?from=x", at), 400, "invalid_query"},
		{"audit stream: negative from", get("/audit/streams/doctor-"+d.ID+"/events?from=-1", at), 400, "invalid_query"},
		{"audit stream: from past uint64", get("/audit/streams/doctor-"+d.ID+"/events?from=99999999999999999999", at), 400, "invalid_query"},
		{"audit stream: limit 0", get("/audit/streams/doctor-"+d.ID+"/events?limit=0", at), 400, "invalid_query"},
		{"audit stream: limit 1001", get("/audit/streams/doctor-"+d.ID+"/events?limit=1001", at), 400, "invalid_query"},
		{"audit stream: control characters", get("/audit/streams/doctor-%01x/events", at), 400, "invalid_query"},
		{"audit stream: too long", get("/audit/streams/"+strings.Repeat("s", 201)+"/events", at), 400, "invalid_query"},
		{"audit stream: unknown", get("/audit/streams/doctor-no-such-doctor/events", at), 404, "stream_not_found"},
		{"audit schedule: no asOf", get("/audit/doctors/"+d.ID+"/schedule", at), 400, "invalid_query"},
		{"audit schedule: asOf not a time", get("/audit/doctors/"+d.ID+"/schedule?asOf=yesterday", at), 400, "invalid_query"},
		{"audit schedule: asOf out of range", get("/audit/doctors/"+d.ID+"/schedule?asOf=0001-01-01T00:00:00Z", at), 400, "invalid_query"},
		{"audit schedule: from not a date", get("/audit/doctors/"+d.ID+"/schedule?asOf=2031-01-01T00:00:00Z&from=soon", at), 400, "invalid_query"},
		{"audit schedule: from out of range", get("/audit/doctors/"+d.ID+"/schedule?asOf=2031-01-01T00:00:00Z&from=9999-01-01", at), 400, "invalid_query"},
		{"audit schedule: days 0", get("/audit/doctors/"+d.ID+"/schedule?asOf=2031-01-01T00:00:00Z&days=0", at), 400, "invalid_query"},
		{"audit schedule: days 32", get("/audit/doctors/"+d.ID+"/schedule?asOf=2031-01-01T00:00:00Z&days=32", at), 400, "invalid_query"},
		{"audit schedule: before the doctor existed", get("/audit/doctors/"+d.ID+"/schedule?asOf=2001-01-01T00:00:00Z", at), 404, "doctor_not_found"},
		{"audit schedule: unknown doctor", get("/audit/doctors/no-such-doctor/schedule?asOf=2031-01-01T00:00:00Z", at), 404, "doctor_not_found"},
		{"audit history: unknown appointment", get("/audit/appointments/no-such-appointment/history", at), 404, "appointment_not_found"},
		{"audit verify: anchor without position", get("/audit/verify?anchor="+strings.Repeat("a", 64), at), 400, "invalid_query"},
		{"audit verify: anchor not hex", get("/audit/verify?anchor="+strings.Repeat("z", 64)+"@3", at), 400, "invalid_query"},
		{"audit verify: anchor short root", get("/audit/verify?anchor=abc@3", at), 400, "invalid_query"},
		{"audit verify: anchor position 0", get("/audit/verify?anchor="+strings.Repeat("a", 64)+"@0", at), 400, "invalid_query"},
		{"audit verify: anchor position not a number", get("/audit/verify?anchor="+strings.Repeat("a", 64)+"@-1", at), 400, "invalid_query"},
		{"time off to before from", post("/doctors/"+d.ID+"/time-off", at, timeOff(testenv.RFC3339(testenv.At(5, 0, 0)), testenv.RFC3339(testenv.At(4, 0, 0)))), 400, "invalid_time_off"},
		{"time off empty range", post("/doctors/"+d.ID+"/time-off", at, timeOff(testenv.RFC3339(testenv.At(5, 0, 0)), testenv.RFC3339(testenv.At(5, 0, 0)))), 400, "invalid_time_off"},
		{"time off in the past", post("/doctors/"+d.ID+"/time-off", at, timeOff(testenv.RFC3339(testenv.At(-3, 0, 0)), testenv.RFC3339(testenv.At(-2, 0, 0)))), 400, "invalid_time_off"},
		{"time off over a year", post("/doctors/"+d.ID+"/time-off", at, timeOff(testenv.RFC3339(testenv.At(1, 0, 0)), testenv.RFC3339(testenv.At(400, 0, 0)))), 400, "invalid_time_off"},
		{"time off from not a time", post("/doctors/"+d.ID+"/time-off", at, timeOff("monday", testenv.RFC3339(testenv.At(5, 0, 0)))), 400, "invalid_input"},
		{"time off without to", post("/doctors/"+d.ID+"/time-off", at, map[string]any{"from": testenv.RFC3339(testenv.At(5, 0, 0))}), 400, "invalid_input"},

		// Doctor profiles.
		{"negative fees", patch("/admin/doctors/"+d.ID, at, map[string]any{"fees": -1}), 400, "invalid_profile"},
		{"bad currency", patch("/admin/doctors/"+d.ID, at, map[string]any{"currency": "rupees"}), 400, "invalid_profile"},
		{"javascript image", patch("/admin/doctors/"+d.ID, at, map[string]any{"imageUrl": "javascript:alert(1)"}), 400, "invalid_profile"},
		{"empty doctor name", patch("/admin/doctors/"+d.ID, at, map[string]any{"name": " "}), 400, "invalid_profile"},
		{"doctor without zone", post("/admin/doctors", at, with(jwt.MapClaims(e.DoctorBody("Dr. No Zone", "Neurologist")), "timezone", nil)), 400, "invalid_input"},
		{"doctor with bad zone", post("/admin/doctors", at, with(jwt.MapClaims(e.DoctorBody("Dr. Bad Zone", "Neurologist")), "timezone", "Nowhere/Here")), 400, "invalid_schedule"},
		{"doctor weak password", post("/admin/doctors", at, with(jwt.MapClaims(e.DoctorBody("Dr. Weak", "Neurologist")), "password", "123")), 400, "weak_password"},
		{"doctor taken email", post("/admin/doctors", at, with(jwt.MapClaims(e.DoctorBody("Dr. Dup", "Neurologist")), "email", d.Email)), 409, "email_taken"},
		{"doctor own profile: name", patch("/doctor/profile", d.Token, map[string]any{"name": "Dr. Renamed"}), 400, "unknown_field"},
		{"doctor own profile: fees", patch("/doctor/profile", d.Token, map[string]any{"fees": -100}), 400, "invalid_profile"},
	}
	// A refused request appends nothing, not even the claim of its
	// Idempotency-Key: every write is sent with a key of its own, and the
	// log's head is the same after all of them.
	before := e.Head(t)
	t.Run("cases", func(t *testing.T) {
		for i, c := range cases {
			if c.req.Method != http.MethodGet && c.req.Header.Get("Idempotency-Key") == "" {
				if c.req.Header == nil {
					c.req.Header = http.Header{}
				}
				c.req.Header.Set("Idempotency-Key", fmt.Sprintf("bad-input-%d", i))
			}
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				r := e.Do(t, c.req)
				r.CheckProblem(t, c.status, c.code)
				if c.status == http.StatusMethodNotAllowed && r.Header.Get("Allow") == "" {
					t.Errorf("405 without Allow")
				}
			})
		}
	})
	if after := e.Head(t); after != before {
		t.Errorf("%d refused requests appended %d events", len(cases), after-before)
	}
}

// A token the engine issued stops working when the clock passes its expiry
// (plus the 30 s leeway), and logging in again gives a working one.
func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{TokenTTL: 10 * time.Minute})
	p := e.Register(t, "Kim Patient")
	if !p.ExpiresAt.Equal(testenv.DefaultNow.Add(10 * time.Minute)) {
		t.Errorf("expiresAt %v", p.ExpiresAt)
	}
	e.Get(t, "/me", p.Token).Must(t, http.StatusOK)
	e.Clock.Advance(10*time.Minute + 20*time.Second) // inside the leeway
	e.Get(t, "/me", p.Token).Must(t, http.StatusOK)
	e.Clock.Advance(15 * time.Second)
	e.Get(t, "/me", p.Token).CheckProblem(t, http.StatusUnauthorized, "invalid_token")
	again := e.Login(t, p.User.Email, testenv.Password)
	e.Get(t, "/me", again.Token).Must(t, http.StatusOK)
}
