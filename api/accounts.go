package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
)

type registerRequest struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type userJSON struct {
	ID       string      `json:"id"`
	Name     string      `json:"name"`
	Email    string      `json:"email"`
	Role     domain.Role `json:"role"`
	DoctorID string      `json:"doctorId,omitempty"`
	// EmailVerified and Active are always present.
	EmailVerified bool `json:"emailVerified"`
	Active        bool `json:"active"`
	// Erased is present (true) once the personal data was erased.
	Erased bool `json:"erased,omitempty"`
}

type profileJSON struct {
	userJSON
	Phone    string `json:"phone"`
	Address  string `json:"address"`
	Gender   string `json:"gender"`
	DOB      string `json:"dob"`
	Position uint64 `json:"position,omitempty"`
}

type authResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	User      userJSON  `json:"user"`
	Position  uint64    `json:"position,omitempty"`
}

func toUser(a commands.AccountResult) userJSON {
	return userJSON{ID: a.ID, Name: a.Profile.Name, Email: a.Email, Role: a.Role, DoctorID: a.DoctorID, EmailVerified: a.EmailVerified, Active: a.Active, Erased: a.Erased}
}

func toProfile(a commands.AccountResult) profileJSON {
	return profileJSON{userJSON: toUser(a), Phone: a.Profile.Phone, Address: a.Profile.Address, Gender: a.Profile.Gender, DOB: a.Profile.DOB, Position: a.Position}
}

func (s *Server) issue(a commands.AccountResult, pos uint64) (authResponse, error) {
	token, exp, err := s.cfg.Tokens.IssueVersion(a.ID, a.Role, a.Profile.Name, a.DoctorID, a.TokenVersion)
	if err != nil {
		return authResponse{}, err
	}
	return authResponse{Token: token, ExpiresAt: exp, User: toUser(a), Position: pos}, nil
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusCreated, bodyRequired, func(r *http.Request, m commands.Meta, req *registerRequest) (any, error) {
		a, err := s.cfg.Commands.RegisterPatient(r.Context(), m, req.Name, req.Email, req.Password)
		if err != nil {
			return nil, err
		}
		if s.cfg.VerifyEmail && !a.EmailVerified {
			// The account stands without it: a failed mail is logged and
			// POST /auth/resend-verification sends another.
			if err := s.sendVerification(r.Context(), s.publicBase(r), m, a.Role, a.ID); err != nil {
				zerolog.Ctx(r.Context()).Error().Err(err).Msg("register: verification mail not sent")
			}
		}
		return s.issue(a, a.Position)
	})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusOK, bodyRequired, func(r *http.Request, _ commands.Meta, req *loginRequest) (any, error) {
		if err := s.logins.wait(r.Context(), req.Email); err != nil {
			return nil, err
		}
		a, err := s.cfg.Commands.Login(r.Context(), req.Email, req.Password)
		if errors.Is(err, account.ErrInvalidCredentials) {
			s.logins.failed(r.Context(), req.Email)
		}
		if err != nil {
			return nil, err
		}
		return s.issue(a, 0)
	})
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	p, _ := PrincipalFrom(r.Context())
	a, err := s.cfg.Commands.Account(r.Context(), p.Role, p.UserID)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, toProfile(a))
}

type patchMeRequest struct {
	Name    *string `json:"name"`
	Phone   *string `json:"phone"`
	Address *string `json:"address"`
	Gender  *string `json:"gender"`
	DOB     *string `json:"dob"`
}

func (s *Server) patchMe(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusOK, bodyRequired, func(r *http.Request, m commands.Meta, req *patchMeRequest) (any, error) {
		a, err := s.cfg.Commands.UpdateAccountProfile(r.Context(), m, commands.ProfilePatchAccount{Name: req.Name, Phone: req.Phone, Address: req.Address, Gender: req.Gender, DOB: req.DOB})
		return toProfile(a), err
	})
}

type createStaffRequest struct {
	Name     string      `json:"name"`
	Email    string      `json:"email"`
	Password string      `json:"password"`
	Role     domain.Role `json:"role"`
}

func (s *Server) createStaff(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusCreated, bodyRequired, func(r *http.Request, m commands.Meta, req *createStaffRequest) (any, error) {
		a, err := s.cfg.Commands.CreateStaff(r.Context(), m, commands.NewAccount{Name: req.Name, Email: req.Email, Password: req.Password, Role: req.Role})
		return toProfile(a), err
	})
}
