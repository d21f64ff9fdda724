package api

import (
	"net/http"

	"github.com/prescripto/prescripto/commands"
)

// body says whether a command route requires a JSON body.
type body int

const (
	bodyRequired body = iota
	bodyOptional      // e.g. POST /appointments/{id}/complete
)

// runCommand is the shape of every write route: decode the JSON body into
// Req (strictly: size cap, unknown fields refused), build the command's
// metadata from the request (actor, correlation, Idempotency-Key), run it,
// and answer with what run returns and status, or with the problem for
// its error.
func runCommand[Req any](s *Server, w http.ResponseWriter, r *http.Request, status int, b body, run func(r *http.Request, m commands.Meta, req *Req) (any, error)) {
	var req Req
	var err error
	if b == bodyOptional {
		_, err = DecodeOptionalJSON(w, r, &req)
	} else {
		err = DecodeJSON(w, r, &req)
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	m, err := s.meta(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out, err := run(r, m, &req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	_ = WriteJSON(w, status, out)
}
