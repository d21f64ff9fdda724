package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type bookBody struct {
	DoctorID string    `json:"doctorId"`
	Start    time.Time `json:"start"`
	Days     int       `json:"days"`
	Tags     []string  `json:"tags"`
	Nested   struct {
		Fees int64 `json:"fees"`
	} `json:"nested"`
}

// chunkedReader hides the length of a body, as a chunked upload does.
type chunkedReader struct{ r io.Reader }

func (c chunkedReader) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	big := `{"doctorId":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	justUnder := `{"doctorId":"` + strings.Repeat("a", MaxBodyBytes-20) + `"}`
	tests := []struct {
		name        string
		contentType string
		encoding    string
		body        string
		chunked     bool
		status      int // 0: success
		code        string
		field       string
		detailHas   string
	}{
		{name: "valid", contentType: "application/json", body: `{"doctorId":"d1","start":"2026-11-25T04:30:00Z","days":3,"tags":["a"],"nested":{"fees":5}}`},
		{name: "charset utf-8", contentType: "application/json; charset=UTF-8", body: `{"doctorId":"d1"}`},
		{name: "trailing whitespace", contentType: "application/json", body: "{\"doctorId\":\"d1\"}\n\n  "},
		{name: "just under 1 MiB", contentType: "application/json", body: justUnder},
		{name: "over 1 MiB", contentType: "application/json", body: big, status: 413, code: "body_too_large"},
		{name: "over 1 MiB chunked", contentType: "application/json", body: big, chunked: true, status: 413, code: "body_too_large"},
		{name: "malformed", contentType: "application/json", body: `{"doctorId" "d1"}`, status: 400, code: "malformed_json", detailHas: "at byte "},
		{name: "truncated", contentType: "application/json", body: `{"doctorId":`, status: 400, code: "malformed_json"},
		{name: "trailing object", contentType: "application/json", body: `{"doctorId":"d1"}{"doctorId":"d2"}`, status: 400, code: "malformed_json", detailHas: "after the JSON value"},
		{name: "trailing garbage", contentType: "application/json", body: `{"doctorId":"d1"} x`, status: 400, code: "malformed_json"},
		{name: "unknown field", contentType: "application/json", body: `{"doctorId":"d1","admin":true}`, status: 400, code: "unknown_field", field: "admin", detailHas: `"admin"`},
		{name: "unknown nested field", contentType: "application/json", body: `{"nested":{"fees":1,"tip":2}}`, status: 400, code: "unknown_field", field: "tip"},
		{name: "wrong type", contentType: "application/json", body: `{"days":"three"}`, status: 400, code: "invalid_type", field: "days", detailHas: "integer"},
		{name: "wrong nested type", contentType: "application/json", body: `{"nested":{"fees":"5"}}`, status: 400, code: "invalid_type", field: "nested.fees", detailHas: "integer"},
		{name: "wrong array type", contentType: "application/json", body: `{"tags":"a"}`, status: 400, code: "invalid_type", field: "tags", detailHas: "array"},
		{name: "float for integer", contentType: "application/json", body: `{"days":1.5}`, status: 400, code: "invalid_type", field: "days"},
		{name: "bad instant", contentType: "application/json", body: `{"start":"tomorrow"}`, status: 400, code: "invalid_type"},
		{name: "array body", contentType: "application/json", body: `[1,2]`, status: 400, code: "invalid_type", detailHas: "object"},
		{name: "null body", contentType: "application/json", body: `null`, status: 400, code: "invalid_type"},
		{name: "empty", contentType: "application/json", body: ``, status: 400, code: "empty_body"},
		{name: "whitespace only", contentType: "application/json", body: " \n", status: 400, code: "empty_body"},
		{name: "empty chunked", contentType: "application/json", body: ``, chunked: true, status: 400, code: "empty_body"},
		{name: "no content type, no body", body: ``, status: 400, code: "empty_body"},
		{name: "no content type with body", body: `{"doctorId":"d1"}`, status: 415, code: "unsupported_media_type"},
		{name: "text/plain", contentType: "text/plain", body: `{"doctorId":"d1"}`, status: 415, code: "unsupported_media_type"},
		{name: "form", contentType: "application/x-www-form-urlencoded", body: `doctorId=d1`, status: 415, code: "unsupported_media_type"},
		{name: "latin1", contentType: "application/json; charset=latin1", body: `{"doctorId":"d1"}`, status: 415, code: "unsupported_media_type"},
		{name: "unparsable content type", contentType: "application/json; ===", body: `{}`, status: 415, code: "unsupported_media_type"},
		{name: "gzip", contentType: "application/json", encoding: "gzip", body: `{}`, status: 415, code: "unsupported_media_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = chunkedReader{body}
			}
			req := httptest.NewRequest(http.MethodPost, "/api/v1/appointments", body)
			if tt.body == "" && !tt.chunked {
				req.Body = http.NoBody
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			var got bookBody
			var decodeErr error
			rec := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if decodeErr = DecodeJSON(w, r, &got); decodeErr != nil {
					WriteError(w, r, decodeErr)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}), req)
			if tt.status == 0 {
				if rec.Code != http.StatusNoContent {
					t.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
				return
			}
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			p := decodeProblem(t, rec)
			if p.Code != tt.code {
				t.Errorf("code %q, want %q (%s)", p.Code, tt.code, p.Detail)
			}
			if tt.detailHas != "" && !strings.Contains(p.Detail, tt.detailHas) {
				t.Errorf("detail %q lacks %q", p.Detail, tt.detailHas)
			}
			if tt.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tt.field) {
				t.Errorf("errors %+v, want field %q", p.Errors, tt.field)
			}
			if tt.encoding != "" && rec.Header().Get("Accept-Encoding") != "identity" {
				t.Errorf("Accept-Encoding %q", rec.Header().Get("Accept-Encoding"))
			}
			var he *HTTPError
			if !errors.As(decodeErr, &he) {
				t.Errorf("DecodeJSON error %T is not *HTTPError", decodeErr)
			}
		})
	}
}

func TestDecodeJSONValues(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"doctorId":"d1","start":"2026-11-25T10:00:00+05:30","days":3,"nested":{"fees":50000}}`))
	req.Header.Set("Content-Type", "application/json")
	var b bookBody
	if err := DecodeJSON(httptest.NewRecorder(), req, &b); err != nil {
		t.Fatal(err)
	}
	if b.DoctorID != "d1" || b.Days != 3 || b.Nested.Fees != 50000 || !b.Start.Equal(time.Date(2026, 11, 25, 4, 30, 0, 0, time.UTC)) {
		t.Errorf("decoded %+v", b)
	}
}

// The text of encoding/json's unknown-field error is the one thing decode
// reads from an error message; pin it.
func TestUnknownFieldErrorFormat(t *testing.T) {
	t.Parallel()
	dec := json.NewDecoder(strings.NewReader(`{"a b\"c":1}`))
	dec.DisallowUnknownFields()
	var v struct{}
	err := dec.Decode(&v)
	name, ok := unknownFieldName(err)
	if !ok || name != `a b"c` {
		t.Fatalf("unknownFieldName(%v) = %q, %v", err, name, ok)
	}
}

func TestDecodeOptionalJSON(t *testing.T) {
	t.Parallel()
	var v struct {
		Reason string `json:"reason"`
	}
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	present, err := DecodeOptionalJSON(httptest.NewRecorder(), req, &v)
	if present || err != nil {
		t.Errorf("no body: %v %v", present, err)
	}
	req = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"reason":"ill"}`))
	req.Header.Set("Content-Type", "application/json")
	present, err = DecodeOptionalJSON(httptest.NewRecorder(), req, &v)
	if !present || err != nil || v.Reason != "ill" {
		t.Errorf("body: %v %v %+v", present, err, v)
	}
	req = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"why":"ill"}`))
	req.Header.Set("Content-Type", "application/json")
	if _, err = DecodeOptionalJSON(httptest.NewRecorder(), req, &v); !errors.Is(err, ErrUnknownField) {
		t.Errorf("unknown field: %v", err)
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	if err := WriteJSON(rec, http.StatusCreated, map[string]any{"id": "a1", "position": 7}); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 201 || rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != `{"id":"a1","position":7}`+"\n" {
		t.Errorf("%d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	rec = httptest.NewRecorder()
	if err := WriteJSON(rec, http.StatusOK, map[string]any{"f": func() {}}); err == nil {
		t.Error("unencodable value: no error")
	}
	if rec.Code != 500 {
		t.Errorf("unencodable value: status %d", rec.Code)
	}
}

func TestQueryHelpers(t *testing.T) {
	t.Parallel()
	req := func(q string) *http.Request { return httptest.NewRequest(http.MethodGet, "/x?"+q, nil) }

	intTests := []struct {
		q      string
		want   int
		failed string // field error code
	}{
		{"", 7, ""},
		{"days=", 7, ""},
		{"days=31", 31, ""},
		{"days=1", 1, ""},
		{"days=0", 0, "out_of_range"},
		{"days=32", 0, "out_of_range"},
		{"days=-3", 0, "out_of_range"},
		{"days=x", 0, "not_an_integer"},
		{"days=1.5", 0, "not_an_integer"},
		{"days=99999999999999999999", 0, "not_an_integer"},
	}
	for _, tt := range intTests {
		n, err := QueryInt(req(tt.q), "days", 7, 1, 31)
		if tt.failed == "" {
			if err != nil || n != tt.want {
				t.Errorf("QueryInt(%q) = %d, %v", tt.q, n, err)
			}
			continue
		}
		checkQueryError(t, err, "days", tt.failed)
	}

	d, ok, err := QueryDate(req("from=2026-11-25"), "from")
	if err != nil || !ok || !d.Equal(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("QueryDate = %v %v %v", d, ok, err)
	}
	if _, ok, err := QueryDate(req(""), "from"); ok || err != nil {
		t.Errorf("absent date: %v %v", ok, err)
	}
	for _, bad := range []string{"2026-13-01", "25-11-2026", "2026-11-25T00:00:00Z", "tomorrow"} {
		_, _, err := QueryDate(req("from="+bad), "from")
		checkQueryError(t, err, "from", "not_a_date")
	}

	ts, ok, err := QueryTime(req("asOf=2026-11-25T10:00:00+05:30"), "asOf") // '+' decodes as a space
	if err != nil || !ok || !ts.Equal(time.Date(2026, 11, 25, 4, 30, 0, 0, time.UTC)) || ts.Location() != time.UTC {
		t.Errorf("QueryTime = %v %v %v", ts, ok, err)
	}
	ts, _, err = QueryTime(req("asOf=2026-11-25T04:30:00.5Z"), "asOf")
	if err != nil || ts.Nanosecond() != 5e8 {
		t.Errorf("QueryTime fractional = %v %v", ts, err)
	}
	for _, bad := range []string{"2026-11-25", "2026-11-25T04:30:00", "now"} {
		_, _, err := QueryTime(req("asOf="+bad), "asOf")
		checkQueryError(t, err, "asOf", "not_a_time")
	}
}

func checkQueryError(t *testing.T, err error, field, code string) {
	t.Helper()
	if !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("%s: error %v, want invalid_query", field, err)
		return
	}
	p := ProblemFor(err)
	if p.Status != 400 || p.Code != "invalid_query" || len(p.Errors) != 1 || p.Errors[0].Field != field || p.Errors[0].Code != code {
		t.Errorf("%s: problem %+v, want field error %s", field, p, code)
	}
	if !strings.Contains(p.Detail, field) {
		t.Errorf("detail %q does not name %q", p.Detail, field)
	}
}
