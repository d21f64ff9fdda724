package api

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/prescripto/prescripto/domain"
)

// Notification is a mail in the notifications outbox, as the admin routes
// show it (without its body).
type Notification struct {
	ID            string    `json:"id"`
	Kind          string    `json:"kind"`
	To            string    `json:"to"`
	Subject       string    `json:"subject"`
	Status        string    `json:"status"`
	Attempts      int       `json:"attempts"`
	LastError     string    `json:"lastError,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	NextAttemptAt time.Time `json:"nextAttemptAt"`
	DoneAt        time.Time `json:"doneAt,omitzero"`
}

// NotificationAdmin lists the outbox's mails and retries a failed one.
type NotificationAdmin interface {
	ListNotifications(ctx context.Context, status string, limit int) ([]Notification, error)
	RetryNotification(ctx context.Context, id string) (Notification, error)
	// MailsSentTo lists the mails sent to an address (a patient's export).
	MailsSentTo(ctx context.Context, to string) ([]Notification, error)
}

// ErrNotificationsElsewhere: this process does not hold the notifications
// outbox (it runs in the worker process).
var ErrNotificationsElsewhere = &HTTPError{Status: http.StatusServiceUnavailable, Code: "notifications_unavailable", Kind: domain.ErrUnavailable,
	Detail: "The notifications outbox is kept by the worker process; this process cannot reach it."}

var notificationStatuses = map[string]bool{"pending": true, "sent": true, "failed": true, "dropped": true}

func (s *Server) listNotifications(w http.ResponseWriter, r *http.Request) error {
	limit, err := QueryInt(r, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	status := r.URL.Query().Get("status")
	if status != "" && !notificationStatuses[status] {
		return ErrInvalidQuery.WithDetail("status must be one of pending, sent, failed, dropped.").
			WithFields(FieldError{Field: "status", Code: CodeInvalidQuery, Detail: "unknown notification status"})
	}
	if s.cfg.Notifications == nil {
		return ErrNotificationsElsewhere
	}
	list, err := s.cfg.Notifications.ListNotifications(r.Context(), status, limit)
	if err != nil {
		return err
	}
	if list == nil {
		list = []Notification{}
	}
	return reply(w, http.StatusOK, map[string]any{"notifications": list})
}

func (s *Server) retryNotification(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Notifications == nil {
		return ErrNotificationsElsewhere
	}
	n, err := s.cfg.Notifications.RetryNotification(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return reply(w, http.StatusAccepted, n)
}
