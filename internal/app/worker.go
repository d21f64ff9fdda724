package app

import (
	"path/filepath"

	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/workers/notify"
)

// notificationsName is the notifications worker's projection name.
const notificationsName = "notifications"

// newWorker builds the worker part: a runner of its own that drives the
// notifications from the log. Mail goes to Options.Mailer, by default to
// the mbox DataDir/mail/outbox.mbox (closed with the App), or nowhere
// without a data dir.
func newWorker(sh *shared) (*projections.Runner, error) {
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
