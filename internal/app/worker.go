package app

import (
	"path/filepath"

	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/workers/notify"
)

// notificationsName is the notifications worker's projection name.
const notificationsName = "notifications"

// newWorker builds the worker part: a runner of its own that drives the
// notifications from the log, and with payments configured the payments
// worker (newPaymentsWorker). Mail goes to Options.Mailer, by default to
// the mbox DataDir/mail/outbox.mbox (closed with the App), or nowhere
// without a data dir.
func (a *App) newWorker(sh *shared) error {
	runner, err := newNotifications(sh)
	if err != nil {
		return err
	}
	a.Workers = runner
	a.local.add(runner)
	if sh.gateway == nil {
		return nil
	}
	cmds, err := sh.commands()
	if err != nil {
		return err
	}
	pr, live, err := newPaymentsWorker(sh, cmds)
	if err != nil {
		return err
	}
	a.PaymentsRunner, a.payments = pr, live
	a.local.add(pr)
	return nil
}

// newNotifications is the notifications worker's runner.
func newNotifications(sh *shared) (*projections.Runner, error) {
	mailer := sh.opts.Mailer
	if mailer == nil {
		mailer = notify.Discard{}
		if sh.opts.DataDir != "" {
			box, err := notify.OpenMbox(filepath.Join(sh.opts.DataDir, "mail", "outbox.mbox"), "")
			if err != nil {
				return nil, err
			}
			sh.closers = append(sh.closers, box.Close)
			mailer = box
		}
	}
	now := sh.opts.Now
	notifications := projections.NewLive(func() *notify.Worker { return notify.New(mailer, now) })
	return sh.runner(projections.WorkersTopic, notifications)
}
