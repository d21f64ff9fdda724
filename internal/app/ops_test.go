package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/api"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/internal/testenv"
)

// With an ops listener (PRESCRIPTO_OPS_ADDR) the API port serves no
// /metrics; the ops listener serves it with /healthz and /readyz.
func TestMetricsOffTheAPIPort(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{OpsListener: true})
	e.CaughtUp(t)
	e.Get(t, "/doctors", "").Must(t, http.StatusOK)
	for _, path := range []string{"//metrics", "/metrics"} {
		e.Do(t, testenv.Req{Method: http.MethodGet, Path: path, NoValidate: true}).CheckProblem(t, http.StatusNotFound, api.CodeNotFound)
	}
	ops := httptest.NewServer(e.App.OpsHandler)
	defer ops.Close()
	for path, want := range map[string]string{"/metrics": `route="/api/v1/doctors"`, "/healthz": `"ok"`, "/readyz": `"caught_up"`} {
		res, err := http.Get(ops.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(b.String(), want) {
			t.Errorf("ops %s: %d, lacks %s", path, res.StatusCode, want)
		}
	}
}

// A client's X-Request-ID never becomes the server's request id: not in
// the response header, the problem, nor the stored event's metadata. It is
// kept as client_request_id (log) and clientRequestId (metadata).
func TestClientRequestIDIsNotTheServerID(t *testing.T) {
	t.Parallel()
	var logs testenv.ProcessLog
	logger := zerolog.New(&logs)
	e := testenv.Start(t, testenv.Options{Logger: &logger})
	const client = "client-chosen-id"
	hdr := http.Header{api.HeaderRequestID: {client}}

	email := e.Unique("rid") + "@example.test"
	r := e.Do(t, testenv.Req{Method: http.MethodPost, Path: "/auth/register", Header: hdr,
		Body: map[string]string{"name": "Ria Dutt", "email": email, "password": testenv.Password}}).Must(t, http.StatusCreated)
	rid := r.Header.Get(api.HeaderRequestID)
	if id, err := uuid.Parse(rid); err != nil || id.Version() != 7 {
		t.Fatalf("response X-Request-ID %q is not a server-made UUIDv7", rid)
	}
	p := e.Do(t, testenv.Req{Method: http.MethodPost, Path: "/auth/register", Header: hdr, Body: map[string]string{"name": "x"}}).CheckProblem(t, http.StatusBadRequest, "")
	if p.RequestID == client || p.RequestID == "" {
		t.Errorf("problem requestId %q", p.RequestID)
	}

	var found bool
	recs, err := e.App.Store.ReadAll(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		var md domain.Metadata
		if err := json.Unmarshal(rec.Metadata, &md); err != nil {
			t.Fatal(err)
		}
		if md.RequestID == client || md.CausationID == client {
			t.Errorf("%s stored the client's id as the server's: %s", rec.Type, rec.Metadata)
		}
		if md.RequestID == rid {
			found = true
			if md.ClientRequestID != client {
				t.Errorf("%s: clientRequestId %q, want %q", rec.Type, md.ClientRequestID, client)
			}
		}
	}
	if !found {
		t.Errorf("no event of request %s", rid)
	}
	if !strings.Contains(logs.String(), `"client_request_id":"`+client+`"`) || !strings.Contains(logs.String(), `"request_id":"`+rid+`"`) {
		t.Errorf("the access log lacks client_request_id %q with request_id %s", client, rid)
	}
}
