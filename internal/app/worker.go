package app

import (
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/workers/notify"
)

// notificationsName is the notifications worker's projection name.
const notificationsName = "notifications"

// newWorker builds the worker part: a runner of its own that drives the
// notifications from the log, and with payments configured the payments
// worker (newPaymentsWorker): on the same runner with the in-process
// transport, on a runner of its own (always in-process) with Redis
// Streams, whose consumer groups would split the log between worker
// processes. Mail goes to the process's mailer (shared.mailer).
func (a *App) newWorker(sh *shared) error {
	var extra []projections.Runnable
	if sh.gateway != nil {
		cmds, err := sh.commands()
		if err != nil {
			return err
		}
		live, err := newPaymentsWorker(sh, cmds)
		if err != nil {
			return err
		}
		a.payments = live
		if sh.redis == nil {
			extra = append(extra, live)
		} else {
			pr, err := sh.localRunner(projections.WorkersTopic+".payments", live)
			if err != nil {
				return err
			}
			a.PaymentsRunner = pr
			a.local.add(pr)
		}
	}
	runner, err := newNotifications(sh, extra...)
	if err != nil {
		return err
	}
	a.Workers = runner
	a.local.add(runner)
	return nil
}

// newNotifications is the notifications worker's runner, with extra
// workers beside it.
func newNotifications(sh *shared, extra ...projections.Runnable) (*projections.Runner, error) {
	mailer, err := sh.mailer()
	if err != nil {
		return nil, err
	}
	now := sh.opts.Now
	notifications := projections.NewLive(func() *notify.Worker { return notify.New(mailer, now) })
	return sh.runner(projections.WorkersTopic, append([]projections.Runnable{notifications}, extra...)...)
}
