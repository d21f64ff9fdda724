package app

import (
	"context"
	"path/filepath"

	"github.com/prescripto/prescripto/api"
	"github.com/prescripto/prescripto/workers/notify"
)

// mailer is the process's one mailer, opened on first use and shared by
// its parts (the notifications worker, the API's account mails):
// Options.Mailer, by default the mbox DataDir/mail/outbox.mbox (closed with
// the App), or nowhere without a data dir. Separate processes on one data
// dir append to the same mbox (one write(2) per message).
func (sh *shared) mailer() (notify.Mailer, error) {
	if sh.mail != nil {
		return sh.mail, nil
	}
	switch {
	case sh.opts.Mailer != nil:
		sh.mail = sh.opts.Mailer
	case sh.opts.DataDir != "":
		box, err := notify.OpenMbox(filepath.Join(sh.opts.DataDir, "mail", "outbox.mbox"), "")
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

// accountMailer sends the API's account mails through a notify.Mailer.
type accountMailer struct{ m notify.Mailer }

// SendAccountMail implements api.AccountMailer.
func (a accountMailer) SendAccountMail(ctx context.Context, m api.AccountMail) error {
	return a.m.Send(ctx, notify.Message{ID: m.ID, To: m.To, ToName: m.ToName, Subject: m.Subject, Body: m.Body, Date: m.Date})
}
