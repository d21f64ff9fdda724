package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/internal/app"
)

// The embedded store is one file that one process owns. While `serve`
// runs, `prescripto admin create` on the same data dir reaches it through
// a Unix socket in the data dir: the data dir is 0700 and the socket 0600,
// so the file system says who may ask (the server's own user), and nothing
// listens on the network.

// adminSocketName is the socket's file name in the data dir.
const adminSocketName = "admin.sock"

// adminRequest asks for an admin account.
type adminRequest struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

// adminResult says what came of it.
type adminResult struct {
	Created bool   `json:"created"`
	Message string `json:"message"`
}

// createAdmin creates the admin unless the email has an account: an
// existing admin is not an error (nothing changes), an account of another
// role is.
func createAdmin(ctx context.Context, a *app.App, req adminRequest) (adminResult, error) {
	created, err := a.EnsureAdmin(ctx, req.Name, req.Email, req.Password)
	if err != nil {
		return adminResult{}, err
	}
	if created {
		return adminResult{Created: true, Message: fmt.Sprintf("admin %s created", req.Email)}, nil
	}
	owner, ok, err := a.Commands.EmailOwner(ctx, req.Email)
	switch {
	case err != nil:
		return adminResult{}, err
	case ok && owner.Role != domain.RoleAdmin:
		return adminResult{}, fmt.Errorf("%s belongs to a %s account, not an admin; nothing changed", req.Email, owner.Role)
	}
	return adminResult{Message: fmt.Sprintf("admin %s exists already; nothing changed (its password stays as it was)", req.Email)}, nil
}

// serveAdminSocket answers `admin create` on the data dir's socket until
// ctx ends. A path too long for a socket is logged and skipped.
func serveAdminSocket(ctx context.Context, dataDir string, a *app.App, log zerolog.Logger) error {
	path := filepath.Join(dataDir, adminSocketName)
	_ = os.Remove(path) // left by a process that died: this one owns the data dir (the store's lock)
	ln, err := net.Listen("unix", path)
	if err != nil {
		log.Warn().Err(err).Str("socket", path).Msg("no admin socket: `admin create` needs the server stopped")
		return nil
	}
	defer os.Remove(path)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("admin socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin", func(w http.ResponseWriter, r *http.Request) {
		var req adminRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		res, err := createAdmin(r.Context(), a, req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		log.Info().Str("email", req.Email).Bool("created", res.Created).Msg("admin create through the admin socket")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("GET /projections", func(w http.ResponseWriter, r *http.Request) {
		st, err := a.ProjectionStatuses(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		head, err := a.Store.HeadPosition(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(projectionList{Head: head, Projections: st})
	})
	mux.HandleFunc("POST /projections/{name}/rebuild", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if err := a.RebuildProjection(r.Context(), name); err != nil {
			status := http.StatusConflict
			if errors.Is(err, domain.ErrNotFound) {
				status = http.StatusNotFound
			}
			http.Error(w, err.Error(), status)
			return
		}
		log.Info().Str("projection", name).Msg("rebuild started through the admin socket")
		w.WriteHeader(http.StatusAccepted)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin socket: %w", err)
	}
	return nil
}

// askAdminSocket asks the server that holds the data dir to create the
// admin.
func askAdminSocket(ctx context.Context, dataDir string, req adminRequest) (adminResult, error) {
	path := filepath.Join(dataDir, adminSocketName)
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
	body, err := json.Marshal(req)
	if err != nil {
		return adminResult{}, err
	}
	status, b, err := adminCall(ctx, c, http.MethodPost, "/admin", bytes.NewReader(body), 64<<10)
	if err != nil {
		return adminResult{}, fmt.Errorf("the data dir %s is in use by another process, which does not answer on %s (%w): stop it and run `admin create` again, or set ADMIN_EMAIL and ADMIN_PASSWORD and restart it", dataDir, path, err)
	}
	if status != http.StatusOK {
		return adminResult{}, errors.New(string(bytes.TrimSpace(b)))
	}
	var out adminResult
	if err := json.Unmarshal(b, &out); err != nil {
		return adminResult{}, fmt.Errorf("admin socket answered %q: %w", b, err)
	}
	return out, nil
}

// adminCall makes one request to the server's admin socket (through c, an
// adminClient) and reads at most limit bytes of the answer. An error means
// the request did not get an answer.
func adminCall(ctx context.Context, c *http.Client, method, path string, body io.Reader, limit int64) (status int, answer []byte, err error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://prescripto"+path, body)
	if err != nil {
		return 0, nil, err
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, limit))
	return res.StatusCode, b, nil
}
