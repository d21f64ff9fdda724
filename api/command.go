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
// and answer with what run returns and status, or return its error for the
// handlerFunc to answer.
func runCommand[Req any](s *Server, w http.ResponseWriter, r *http.Request, status int, b body, run func(r *http.Request, m commands.Meta, req *Req) (any, error)) error {
	var req Req
	var err error
	if b == bodyOptional {
		_, err = DecodeOptionalJSON(w, r, &req)
	} else {
		err = DecodeJSON(w, r, &req)
	}
	if err != nil {
		return err
	}
	m, err := s.meta(r)
	if err != nil {
		return err
	}
	out, err := run(r, m, &req)
	if err != nil {
		return err
	}
	return reply(w, status, out)
}
