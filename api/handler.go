package api

import "net/http"

// handlerFunc is a route handler that returns its error instead of writing
// it: ServeHTTP answers a non-nil error with WriteError, the one mapping
// from errors to problem+json (which also logs a 5xx, once). A handler
// returns an error only before it has started its answer; once it has
// written (reply, WriteJSON), it returns nil.
//
//	r.Get("/doctors", handle(s.listDoctors))
//
//	func (s *Server) listDoctors(w http.ResponseWriter, r *http.Request) error {
//		docs, err := s.cfg.Directory.Doctors(r.Context(), f)
//		if err != nil {
//			return err
//		}
//		return reply(w, http.StatusOK, map[string]any{"doctors": docs})
//	}
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP implements http.Handler.
func (f handlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		WriteError(w, r, err)
	}
}

// handle adapts f to chi's Get, Post, ... (which take an http.HandlerFunc).
func handle(f handlerFunc) http.HandlerFunc { return f.ServeHTTP }

// reply writes v as the JSON answer with status and returns nil, the end of
// a handlerFunc. WriteJSON's own error is not returned: by then the answer
// has begun (WriteJSON already writes a clean 500 when v does not encode),
// and no problem could replace it.
func reply(w http.ResponseWriter, status int, v any) error {
	_ = WriteJSON(w, status, v)
	return nil
}
