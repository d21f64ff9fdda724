package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
)

// AccountMail is a mail about the account itself (verification, password
// reset). It carries a token that exists nowhere else (the log stores only
// its hash), so it is sent from the request that made the token, not by a
// worker reacting to the event.
type AccountMail struct {
	// ID identifies the mail; a mailer sends an id at most once.
	ID      string
	To      string
	ToName  string
	Subject string
	Body    string
	Date    time.Time
}

// AccountMailer sends account mails.
type AccountMailer interface {
	SendAccountMail(ctx context.Context, m AccountMail) error
}

// ErrEmailUnverified: the patient must verify the email before booking.
var ErrEmailUnverified = &HTTPError{Status: http.StatusForbidden, Code: "email_unverified", Kind: domain.ErrForbidden,
	Detail: "Verify your email address before booking (POST /api/v1/auth/resend-verification sends the mail again)."}

// accepted is the body of a 202.
var accepted = map[string]string{"status": "accepted"}

// maxBackground bounds the forgot-password requests worked on after their
// answer; past it they are worked on before it.
const maxBackground = 32

type tokenRequest struct {
	Token string `json:"token"`
}

type emailRequest struct {
	Email string `json:"email"`
}

type resetPasswordRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

type changePasswordRequest struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	p, _ := PrincipalFrom(r.Context())
	m, err := s.meta(r)
	if err != nil {
		return err
	}
	if err := s.cfg.Commands.Logout(r.Context(), m, p.TokenID, p.ExpiresAt); err != nil {
		return err
	}
	s.sessions.forget(p.Role, p.UserID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusOK, bodyRequired, func(r *http.Request, m commands.Meta, req *changePasswordRequest) (any, error) {
		a, err := s.cfg.Commands.ChangePassword(r.Context(), m, req.CurrentPassword, req.NewPassword)
		if err != nil {
			return nil, err
		}
		s.sessions.forget(a.Role, a.ID)
		return s.issue(a, a.Position)
	})
}

func (s *Server) deactivateUser(w http.ResponseWriter, r *http.Request) error {
	return s.setActive(w, r, false)
}

func (s *Server) activateUser(w http.ResponseWriter, r *http.Request) error {
	return s.setActive(w, r, true)
}

func (s *Server) setActive(w http.ResponseWriter, r *http.Request, active bool) error {
	return runCommand(s, w, r, http.StatusOK, bodyOptional, func(r *http.Request, m commands.Meta, _ *struct{}) (any, error) {
		a, err := s.cfg.Commands.SetAccountActive(r.Context(), m, chi.URLParam(r, "id"), active)
		if err != nil {
			return nil, err
		}
		s.sessions.forget(a.Role, a.ID)
		return toProfile(a), nil
	})
}

// forgotPassword answers 202 whether or not the email has an account, and
// (room permitting) before finding out, so that neither the answer nor its
// timing tells.
func (s *Server) forgotPassword(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusAccepted, bodyRequired, func(r *http.Request, m commands.Meta, req *emailRequest) (any, error) {
		if len(req.Email) > 254 {
			return nil, domain.Invalid("email must be at most 254 characters")
		}
		log := zerolog.Ctx(r.Context())
		base := s.publicBase(r)
		work := func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			t, ok, err := s.cfg.Commands.RequestPasswordReset(ctx, m, req.Email)
			if err == nil && ok {
				err = s.mail(ctx, t, "Reset your Prescripto password", fmt.Sprintf(
					"Someone (we hope you) asked to reset the password of your Prescripto account.\n\n"+
						"Choose a new one here, until %s:\n\n    %s/reset-password?token=%s\n\n"+
						"(Or send the token %s with your new password to POST /api/v1/auth/reset-password as {\"token\": \"...\", \"password\": \"...\"}.)\n"+
						"If you did not ask for this, ignore this mail: your password stays as it is.\n",
					t.ExpiresAt.Format(time.RFC3339), base, url.QueryEscape(t.Token), t.Token))
			}
			if err != nil {
				log.Error().Err(err).Msg("forgot-password: reset mail not sent")
			}
		}
		select {
		case s.background <- struct{}{}:
			ctx := context.WithoutCancel(r.Context())
			go func() {
				defer func() { <-s.background }()
				work(ctx)
			}()
		default:
			work(r.Context())
		}
		return accepted, nil
	})
}

func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusOK, bodyRequired, func(r *http.Request, m commands.Meta, req *resetPasswordRequest) (any, error) {
		a, err := s.cfg.Commands.ResetPassword(r.Context(), m, req.Token, req.Password)
		if err != nil {
			return nil, err
		}
		s.sessions.forget(a.Role, a.ID)
		return toProfile(a), nil
	})
}

func (s *Server) verifyEmail(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusOK, bodyRequired, func(r *http.Request, m commands.Meta, req *tokenRequest) (any, error) {
		a, err := s.cfg.Commands.VerifyEmail(r.Context(), m, req.Token)
		return toProfile(a), err
	})
}

func (s *Server) resendVerification(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusAccepted, bodyOptional, func(r *http.Request, m commands.Meta, _ *struct{}) (any, error) {
		p, _ := PrincipalFrom(r.Context())
		if err := s.sendVerification(r.Context(), s.publicBase(r), m, p.Role, p.UserID); err != nil {
			return nil, err
		}
		return accepted, nil
	})
}

// sendVerification issues a verification token and mails it (nothing when
// the email is verified already).
func (s *Server) sendVerification(ctx context.Context, base string, m commands.Meta, role domain.Role, id string) error {
	t, ok, err := s.cfg.Commands.IssueEmailVerification(ctx, m, role, id)
	if err != nil || !ok {
		return err
	}
	return s.mail(ctx, t, "Verify your email address", fmt.Sprintf(
		"Welcome to Prescripto. Please confirm that this address is yours, until %s:\n\n    %s/verify-email?token=%s\n\n"+
			"(Or send the token %s to POST /api/v1/auth/verify-email as {\"token\": \"...\"}.)\n"+
			"If you did not open an account, ignore this mail.\n",
		t.ExpiresAt.Format(time.RFC3339), base, url.QueryEscape(t.Token), t.Token))
}

// mail sends a mailed token to its account's owner (nowhere without a
// mailer).
func (s *Server) mail(ctx context.Context, t commands.MailedToken, subject, body string) error {
	if s.cfg.AccountMail == nil {
		return nil
	}
	err := s.cfg.AccountMail.SendAccountMail(ctx, AccountMail{
		ID: t.MailID, To: t.Account.Email, ToName: t.Account.Profile.Name, Subject: subject, Body: body, Date: s.cfg.Now(),
	})
	if err != nil {
		return fmt.Errorf("api: send %q mail: %w", subject, err)
	}
	return nil
}

// requireVerifiedEmail refuses, with 403 email_unverified, a patient whose
// email is not verified, when verification is on (Config.VerifyEmail).
func (s *Server) requireVerifiedEmail(next http.Handler) http.Handler {
	return handle(func(w http.ResponseWriter, r *http.Request) error {
		p, ok := PrincipalFrom(r.Context())
		if s.cfg.VerifyEmail && ok && p.Role == domain.RolePatient {
			a, err := s.cfg.Commands.Account(r.Context(), p.Role, p.UserID)
			if err != nil {
				return err
			}
			if !a.EmailVerified {
				return ErrEmailUnverified
			}
		}
		next.ServeHTTP(w, r)
		return nil
	})
}
