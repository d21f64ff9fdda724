package app

import (
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/workers/notify"
)

// notificationsName is the notifications worker's projection name.
const notificationsName = "notifications"

// newWorker builds the worker part: a runner of its own that drives the
// notifications from the log, and with payments configured the payments
// worker (newPaymentsWorker). Mail goes to the process's mailer
// (shared.mailer).
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
	mailer, err := sh.mailer()
	if err != nil {
		return nil, err
	}
	now := sh.opts.Now
	notifications := projections.NewLive(func() *notify.Worker { return notify.New(mailer, now) })
	return sh.runner(projections.WorkersTopic, notifications)
}
