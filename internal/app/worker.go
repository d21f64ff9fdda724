package app

import (
	"context"
	"errors"
	"strings"
	"time"

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
// processes. Mail goes to the process's mailer (shared.mailer). It
// returns the runners for the caller to add to the process's.
func (a *App) newWorker(sh *shared) ([]*projections.Runner, error) {
	var (
		extra   []projections.Runnable
		runners []*projections.Runner
	)
	if sh.gateway != nil {
		cmds, err := sh.commands()
		if err != nil {
			return nil, err
		}
		live, err := newPaymentsWorker(sh, cmds)
		if err != nil {
			return nil, err
		}
		a.payments = live
		if sh.redis == nil {
			extra = append(extra, live)
		} else {
			pr, err := sh.localRunner(projections.WorkersTopic+".payments", live)
			if err != nil {
				return nil, err
			}
			a.PaymentsRunner = pr
			runners = append(runners, pr)
		}
	}
	runner, err := a.newNotifications(sh, extra...)
	if err != nil {
		return nil, err
	}
	if runner != nil {
		a.Workers = runner
		runners = append(runners, runner)
	}
	return runners, nil
}

// notifications are the notifications worker's parts: the projector that
// puts mails into the outbox and the deliverer that sends them.
type notifications struct {
	live    *projections.Live[*notify.Worker]
	deliver *notify.Deliverer
}

// newNotifications is the notifications worker's runner, with extra
// workers beside it.
func (a *App) newNotifications(sh *shared, extra ...projections.Runnable) (*projections.Runner, error) {
	mailer, err := sh.mailer()
	if err != nil {
		return nil, err
	}
	box, err := sh.outbox()
	if errors.Is(err, notify.ErrOutboxLocked) {
		// Another worker process on this data dir sends the mail: this one
		// is a standby for it (it runs the other workers only).
		sh.opts.Logger.Warn().Err(err).Msg("notify: another process on this data dir sends the mail; this worker sends none")
		if len(extra) == 0 {
			return nil, nil
		}
		return sh.runner(projections.WorkersTopic, extra...)
	}
	if err != nil {
		return nil, err
	}
	metrics, err := notify.NewMetrics(sh.prom)
	if err != nil {
		return nil, err
	}
	mo := sh.opts.Mail
	dc := mo.Delivery
	dc.Outbox, dc.Mailer, dc.Now, dc.Metrics, dc.DailyCap = box, mailer, sh.opts.Now, metrics, mo.DailyCap
	dc.Logger = sh.opts.Logger.With().Str("component", "notifications").Logger()
	deliver := notify.NewDeliverer(dc)
	cfg := notify.Config{Outbox: box, Now: sh.opts.Now, Reminders: mo.Reminders, Wake: deliver.Wake, Metrics: metrics}
	if gw := sh.gateway; gw != nil {
		base := strings.TrimRight(mo.PublicURL, "/")
		cfg.PayLink = func(_, orderID string) string {
			u := gw.CheckoutURL(orderID)
			if strings.HasPrefix(u, "/") {
				return base + u
			}
			return u
		}
	}
	first, err := notify.New(cfg)
	if err != nil {
		return nil, err
	}
	made := false
	live := projections.NewLive(func() *notify.Worker {
		if !made {
			made = true
			return first
		}
		// A rebuild: a copy resumes from the saved checkpoint too (the
		// outbox holds what was mailed; nothing is mailed twice).
		w, err := notify.New(cfg)
		if err != nil {
			dc.Logger.Error().Err(err).Msg("notify: checkpoint unreadable; the copy starts from the log's start (old facts are not mailed)")
			cfg.Outbox = emptyCheckpoint{box}
			w, _ = notify.New(cfg)
			cfg.Outbox = box
		}
		return w
	})
	a.notify = &notifications{live: live, deliver: deliver}
	sh.notifyAdmin = notificationsAdmin{box: box, now: sh.opts.Now, wake: deliver.Wake}
	return sh.runner(projections.WorkersTopic, append([]projections.Runnable{live}, extra...)...)
}

// emptyCheckpoint is an outbox whose checkpoint reads as none.
type emptyCheckpoint struct{ notify.Outbox }

func (emptyCheckpoint) Checkpoint(context.Context) (uint64, []byte, error) { return 0, nil, nil }

// runNotifications delivers the outbox's mails, and every second queues
// the due reminders and saves the worker's checkpoint (once more at the
// end).
func (a *App) runNotifications(ctx context.Context) error {
	n := a.notify
	go func() { _ = n.deliver.Run(ctx) }()
	log := a.opts.Logger.With().Str("component", "notifications").Logger()
	every(ctx, time.Second, func() {
		w := n.live.Current()
		if _, err := w.Tick(ctx); err != nil && ctx.Err() == nil {
			log.Error().Err(err).Msg("notify: reminders")
		}
		if err := w.Save(ctx); err != nil && ctx.Err() == nil {
			log.Error().Err(err).Msg("notify: checkpoint")
		}
	})
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := n.live.Current().Save(sctx); err != nil {
		log.Error().Err(err).Msg("notify: checkpoint at the end")
	}
	return nil
}
