package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/prescripto/prescripto/api"
	"github.com/prescripto/prescripto/workers/notify"
)

// MailOptions configures mail.
type MailOptions struct {
	// SMTPURL (SMTP_URL) sends mail over SMTP; without it the embedded
	// default writes it to the mbox DataDir/mail/outbox.mbox.
	SMTPURL string
	// From (MAIL_FROM) is the sender (default notify.DefaultFrom).
	From string
	// TLSConfig is given to the SMTP client (tests trust their server).
	TLSConfig *tls.Config
	// Reminders (REMINDERS) are the leads of the reminders (default 24h,1h;
	// an empty non-nil slice: none).
	Reminders []time.Duration
	// DailyCap (MAIL_DAILY_CAP) bounds the mails to one recipient in 24 h
	// (default 20; negative: no bound).
	DailyCap int
	// PublicURL (PRESCRIPTO_PUBLIC_URL) is where users reach this server:
	// the pay links and calendar-feed URLs in mails start with it.
	PublicURL string
	// Delivery tunes the deliverer (attempts, backoff, poll; zero: its
	// defaults).
	Delivery notify.DeliveryConfig
}

// Validate checks the settings.
func (m MailOptions) Validate() error {
	if m.SMTPURL != "" {
		if _, _, _, _, _, _, err := notify.ParseSMTPURL(m.SMTPURL); err != nil {
			return err
		}
	}
	for _, d := range m.Reminders {
		if d <= 0 {
			return errors.New("REMINDERS: each lead is a positive duration such as 24h or 90m")
		}
	}
	if m.DailyCap > notify.MaxDailyCap {
		return fmt.Errorf("MAIL_DAILY_CAP must be at most %d (the sends a recipient's record keeps)", notify.MaxDailyCap)
	}
	return nil
}

// mailer is the process's one transport, opened on first use and shared
// by its parts (the notifications deliverer, the API's account mails):
// Options.Mailer; SMTP with SMTP_URL; by default the mbox
// DataDir/mail/outbox.mbox (closed with the App); or nowhere without a
// data dir. Separate processes on one data dir append to the same mbox
// (one write(2) per message).
func (sh *shared) mailer() (notify.Mailer, error) {
	if sh.mail != nil {
		return sh.mail, nil
	}
	mo := sh.opts.Mail
	switch {
	case sh.opts.Mailer != nil:
		sh.mail = sh.opts.Mailer
	case mo.SMTPURL != "":
		s, err := notify.NewSMTP(notify.SMTPConfig{URL: mo.SMTPURL, From: mo.From, TLSConfig: mo.TLSConfig})
		if err != nil {
			return nil, err
		}
		sh.closers = append(sh.closers, s.Close)
		sh.mail = s
	case sh.opts.DataDir != "":
		box, err := notify.OpenMbox(filepath.Join(sh.opts.DataDir, "mail", "outbox.mbox"), mo.From)
		if err != nil {
			return nil, err
		}
		sh.closers = append(sh.closers, box.Close)
		sh.mail = box
	default:
		sh.mail = notify.Discard{}
	}
	return sh.mail, nil
}

// outbox is the notifications' outbox: the collections
// notifications_outbox and notifications_checkpoint of the read models'
// database with MONGODB_URI (every worker process delivers; the leases
// keep each mail to one sender), else DataDir/mail/outbox (one process at
// a time: ErrOutboxLocked for another), or in memory without a data dir.
func (sh *shared) outbox() (notify.Outbox, error) {
	if sh.box != nil {
		return sh.box, nil
	}
	if sh.mongo != nil {
		ctx, cancel := context.WithTimeout(context.Background(), max(sh.opts.ConnectTimeout, 10*time.Second))
		defer cancel()
		box, err := notify.NewMongoOutbox(ctx, sh.mongo.DB())
		if err != nil {
			return nil, fmt.Errorf("MONGODB_URI: %w", err)
		}
		sh.box = box
		return box, nil
	}
	if sh.opts.DataDir == "" {
		sh.box = notify.NewMemoryOutbox()
		return sh.box, nil
	}
	box, err := notify.OpenFileOutbox(filepath.Join(sh.opts.DataDir, "mail", "outbox"), 0, sh.opts.Now())
	if err != nil {
		return nil, err
	}
	sh.closers = append(sh.closers, box.Close)
	sh.box = box
	return box, nil
}

// accountMailer sends the API's account mails through a notify.Mailer.
type accountMailer struct{ m notify.Mailer }

// SendAccountMail implements api.AccountMailer.
func (a accountMailer) SendAccountMail(ctx context.Context, m api.AccountMail) error {
	return a.m.Send(ctx, notify.Message{ID: m.ID, To: m.To, ToName: m.ToName, Subject: m.Subject, Body: m.Body, Date: m.Date})
}

// notificationsAdmin answers the API's admin routes from the outbox.
type notificationsAdmin struct {
	box  notify.Outbox
	now  func() time.Time
	wake func()
}

func notificationView(m notify.Mail) api.Notification {
	return api.Notification{ID: m.ID, Kind: m.Kind, To: m.To, Subject: m.Subject, Status: string(m.Status),
		Attempts: m.Attempts, LastError: m.LastError, CreatedAt: m.CreatedAt, NextAttemptAt: m.NextAt, DoneAt: m.DoneAt}
}

// ListNotifications implements api.NotificationAdmin.
func (n notificationsAdmin) ListNotifications(ctx context.Context, status string, limit int) ([]api.Notification, error) {
	ms, err := n.box.List(ctx, notify.Status(status), limit)
	if err != nil {
		return nil, err
	}
	out := make([]api.Notification, len(ms))
	for i, m := range ms {
		out[i] = notificationView(m)
	}
	return out, nil
}

// MailsSentTo implements api.NotificationAdmin: the outbox's sent mails
// (kept for its retention) to the address.
func (n notificationsAdmin) MailsSentTo(ctx context.Context, to string) ([]api.Notification, error) {
	ms, err := n.box.List(ctx, notify.StatusSent, math.MaxInt32)
	if err != nil {
		return nil, err
	}
	out := []api.Notification{}
	for _, m := range ms {
		if m.To == to {
			out = append(out, notificationView(m))
		}
	}
	return out, nil
}

// RetryNotification implements api.NotificationAdmin.
func (n notificationsAdmin) RetryNotification(ctx context.Context, id string) (api.Notification, error) {
	m, err := n.box.Retry(ctx, id, n.now())
	if err != nil {
		return api.Notification{}, err
	}
	n.wake()
	return notificationView(m), nil
}
