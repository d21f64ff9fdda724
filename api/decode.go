package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/prescripto/prescripto/domain"
)

// MaxBodyBytes caps every request body (API.md: bodies over 1 MiB get 413).
const MaxBodyBytes = 1 << 20

// DecodeJSON reads r's body into dst (a pointer) and answers the errors a
// client can cause as *HTTPError, ready for WriteError:
//
//   - a Content-Type other than application/json (charset, if given, must be
//     utf-8), a body without Content-Type, or a Content-Encoding: 415
//     unsupported_media_type
//   - more than MaxBodyBytes: 413 body_too_large
//   - no body, or only whitespace: 400 empty_body
//   - not JSON, or anything after the first value: 400 malformed_json (with
//     the byte offset)
//   - a field dst does not have: 400 unknown_field naming it
//   - a value of the wrong JSON type, or a body that is not an object: 400
//     invalid_type naming the field and the expected type
//
// An error returned by a field's UnmarshalJSON passes through unchanged if it
// is a *domain.Error (so a value object's validation keeps its code), and
// becomes 400 invalid_type otherwise. Any other error is a programming error
// (dst not a pointer) and maps to 500.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	present, err := decodeJSON(w, r, dst)
	if err == nil && !present {
		return ErrEmptyBody
	}
	return err
}

// DecodeOptionalJSON is DecodeJSON for routes whose body may be omitted
// (POST /appointments/{id}/cancel without a reason): no body at all gives
// (false, nil) and leaves dst untouched.
func DecodeOptionalJSON(w http.ResponseWriter, r *http.Request, dst any) (present bool, err error) {
	return decodeJSON(w, r, dst)
}

func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) (bool, error) {
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		if err := checkJSONContentType(ct); err != nil {
			return false, err
		}
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return false, ErrUnsupportedMediaType.WithDetail("Content-Encoding %q is not supported; send the body uncompressed.", ce).
			WithHeader("Accept-Encoding", "identity") // RFC 7694
	}
	if r.Body == nil || r.Body == http.NoBody {
		return false, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return false, ErrBodyTooLarge.WithCause(err)
		}
		// The client hung up or the connection broke mid-body.
		return false, ErrMalformedJSON.WithDetail("The request body could not be read.").WithCause(err)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return false, nil
	}
	if ct == "" {
		return false, ErrUnsupportedMediaType.WithDetail("A request body needs Content-Type: application/json.")
	}
	if bytes.Equal(trimmed, []byte("null")) {
		return false, ErrInvalidType.WithDetail("The request body must be a JSON object.").
			WithFields(FieldError{Field: "", Code: CodeInvalidType, Detail: "expected object"})
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return false, decodeError(err)
	}
	// Exactly one value: anything but whitespace after it is an error.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		off := dec.InputOffset()
		return false, ErrMalformedJSON.WithDetail("The request body has data after the JSON value (at byte %d).", off)
	}
	return true, nil
}

func checkJSONContentType(ct string) error {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ErrUnsupportedMediaType.WithDetail("Content-Type %q does not parse; send application/json.", ct)
	}
	if mt != "application/json" {
		return ErrUnsupportedMediaType.WithDetail("Content-Type %q is not supported; send application/json.", mt)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return ErrUnsupportedMediaType.WithDetail("Charset %q is not supported; send UTF-8.", cs)
	}
	return nil
}

func decodeError(err error) error {
	var (
		syn *json.SyntaxError
		ute *json.UnmarshalTypeError
		iue *json.InvalidUnmarshalError
		de  *domain.Error
	)
	switch {
	case errors.As(err, &iue):
		return err // a programming error: 500
	case errors.As(err, &syn):
		return ErrMalformedJSON.WithDetail("The request body is not valid JSON: %s (at byte %d).", syn.Error(), syn.Offset).WithCause(err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return ErrMalformedJSON.WithDetail("The request body ends in the middle of a JSON value.").WithCause(err)
	case errors.As(err, &ute):
		want := jsonTypeName(ute.Type)
		if ute.Field == "" {
			return ErrInvalidType.WithDetail("The request body must be a JSON %s, not %s.", want, ute.Value).
				WithFields(FieldError{Field: "", Code: CodeInvalidType, Detail: "expected " + want}).WithCause(err)
		}
		return ErrInvalidType.WithDetail("Field %q must be a JSON %s, not %s.", ute.Field, want, ute.Value).
			WithFields(FieldError{Field: ute.Field, Code: CodeInvalidType, Detail: "expected " + want}).WithCause(err)
	case errors.As(err, &de):
		return err
	}
	if name, ok := unknownFieldName(err); ok {
		return ErrUnknownField.WithDetail("Field %q is not accepted here.", name).
			WithFields(FieldError{Field: name, Code: CodeUnknownField, Detail: "unknown field"}).WithCause(err)
	}
	return ErrInvalidType.WithDetail("A field of the request body has an invalid value.").WithCause(err)
}

// unknownFieldName recognises the error of Decoder.DisallowUnknownFields.
// encoding/json has no typed error for it (golang/go#29035), so this is the
// one place that reads an error's text: the format `json: unknown field "x"`
// is the same in the v1 and the jsonv2-backed implementations, and
// TestDecodeJSON pins it. It only names the field; the mapping to a problem
// stays typed.
func unknownFieldName(err error) (string, bool) {
	rest, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	if !ok {
		return "", false
	}
	name, uerr := strconv.Unquote(rest)
	if uerr != nil {
		return rest, true
	}
	return name, true
}

// jsonTypeName names the JSON type a Go type decodes from.
func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[time.Time]() {
		return "string"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return "value"
}

// WriteJSON writes v as application/json with status. v is marshalled before
// anything is written, so an encoding failure still yields a clean 500.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		w.Header().Set("Content-Type", problemContentType)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"type":"` + ProblemTypeBase + CodeInternal + `","title":"Internal Server Error","status":500,"detail":"` + internalDetail + `","code":"internal"}` + "\n"))
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(append(body, '\n'))
	return err
}

// QueryInt reads the integer query parameter name: def when absent or empty,
// else it must parse and lie in [min, max] (400 invalid_query otherwise).
func QueryInt(r *http.Request, name string, def, min, max int) (int, error) {
	return queryInt(r.URL.Query(), name, def, min, max)
}

// queryInt is QueryInt on an already parsed query.
func queryInt(q url.Values, name string, def, min, max int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, queryError(name, "not_an_integer", "Query parameter %q must be an integer.", name)
	}
	if n < min || n > max {
		return 0, queryError(name, "out_of_range", "Query parameter %q must be between %d and %d.", name, min, max)
	}
	return n, nil
}

// QueryDate reads the calendar date query parameter name (YYYY-MM-DD). It
// returns the date as midnight UTC of that day (convert it with
// doctor.DateOf), whether the parameter was present, and 400 invalid_query
// if it does not parse.
func QueryDate(r *http.Request, name string) (time.Time, bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, true, queryError(name, "not_a_date", "Query parameter %q must be a date YYYY-MM-DD.", name)
	}
	return t, true, nil
}

// QueryTime reads the RFC 3339 instant query parameter name, in UTC, whether
// it was present, and 400 invalid_query if it does not parse. A '+' of an
// offset that arrived unencoded (and so decoded as a space) is restored.
func QueryTime(r *http.Request, name string) (time.Time, bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && strings.Contains(s, " ") {
		t, err = time.Parse(time.RFC3339Nano, strings.ReplaceAll(s, " ", "+"))
	}
	if err != nil {
		return time.Time{}, true, queryError(name, "not_a_time", "Query parameter %q must be an RFC 3339 instant such as 2026-11-25T04:30:00Z.", name)
	}
	return t.UTC(), true, nil
}

func queryError(name, code, format string, args ...any) *HTTPError {
	return ErrInvalidQuery.WithDetail(format, args...).WithFields(FieldError{Field: name, Code: code})
}
