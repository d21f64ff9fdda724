package notify

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// MaxDailyCap is the largest DailyCap the outboxes enforce: the MongoDB
// outbox's record of a recipient's sends keeps the newest 1,000.
const MaxDailyCap = 1000

// DeliveryConfig configures a Deliverer.
type DeliveryConfig struct {
	Outbox Outbox
	Mailer Mailer
	Now    func() time.Time
	Logger zerolog.Logger
	// Metrics (nil: not counted).
	Metrics *Metrics
	// MaxAttempts: a mail that failed this many times is parked as failed
	// (default 8).
	MaxAttempts int
	// Backoff is the wait after the first failure, doubled after each
	// further one up to MaxBackoff (defaults 10 s and 30 min).
	Backoff, MaxBackoff time.Duration
	// DailyCap bounds the mails to one recipient in 24 h (MAIL_DAILY_CAP,
	// default 20; negative: no bound; at most MaxDailyCap); what is over
	// is dropped.
	DailyCap int
	// Parallel bounds the mails sent at once (default 4).
	Parallel int
	// Lease is how long a mail handed to a sender is not handed out again
	// (default 2 min; longer than an SMTP send can take).
	Lease time.Duration
	// Poll is how often the outbox is looked at without a Wake (default 1 s).
	Poll time.Duration
}

func (c *DeliveryConfig) defaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.Backoff <= 0 {
		c.Backoff = 10 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Minute
	}
	if c.DailyCap == 0 {
		c.DailyCap = 20
	}
	if c.Parallel <= 0 {
		c.Parallel = 4
	}
	if c.Lease <= 0 {
		c.Lease = 2 * time.Minute
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
}

// Deliverer sends the outbox's due mails through the Mailer and marks
// each: sent, pending again after a backoff (a temporary failure), failed
// (parked after MaxAttempts, or refused for good), dropped (over the
// recipient's daily cap).
type Deliverer struct {
	cfg  DeliveryConfig
	wake chan struct{}
	capM sync.Mutex // serialises the cap's count-then-send per batch
	// observed is when observeQueue last read the outbox (wall clock,
	// unix nanoseconds).
	observed atomic.Int64
}

// NewDeliverer makes a Deliverer.
func NewDeliverer(cfg DeliveryConfig) *Deliverer {
	cfg.defaults()
	return &Deliverer{cfg: cfg, wake: make(chan struct{}, 1)}
}

// Wake makes Run look at the outbox now (mails were added).
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends.
func (d *Deliverer) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	for {
		for {
			n, err := d.Deliver(ctx)
			if err != nil && ctx.Err() == nil {
				d.cfg.Logger.Error().Err(err).Msg("notify: deliver")
			}
			if n == 0 || err != nil || ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-d.wake:
		}
	}
}

// Deliver sends one batch of due mails and says how many it looked at.
func (d *Deliverer) Deliver(ctx context.Context) (int, error) {
	now := d.cfg.Now()
	d.observeQueue(ctx, now)
	due, err := d.cfg.Outbox.Due(ctx, now, 8*d.cfg.Parallel, d.cfg.Lease)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	due, err = d.applyCap(ctx, now, due)
	if err != nil {
		return 0, err
	}
	sem := make(chan struct{}, d.cfg.Parallel)
	var wg sync.WaitGroup
	errs := make([]error, len(due))
	for i, m := range due {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = d.send(ctx, m)
		}()
	}
	wg.Wait()
	return len(due), errors.Join(errs...)
}

// applyCap drops the mails over their recipient's cap and returns the rest.
func (d *Deliverer) applyCap(ctx context.Context, now time.Time, due []Mail) ([]Mail, error) {
	if d.cfg.DailyCap < 0 {
		return due, nil
	}
	d.capM.Lock()
	defer d.capM.Unlock()
	counts := map[string]int{}
	keep := due[:0]
	for _, m := range due {
		n, ok := counts[m.To]
		if !ok {
			var err error
			if n, err = d.cfg.Outbox.SentSince(ctx, m.To, now.Add(-24*time.Hour)); err != nil {
				return nil, err
			}
		}
		if n >= d.cfg.DailyCap {
			m.Status, m.DoneAt, m.LastError = StatusDropped, now, "over the recipient's daily cap"
			if err := d.cfg.Outbox.Mark(ctx, m); err != nil {
				return nil, err
			}
			d.cfg.Metrics.inc("dropped")
			continue
		}
		counts[m.To] = n + 1
		keep = append(keep, m)
	}
	return keep, nil
}

// send sends m and marks the outcome.
func (d *Deliverer) send(ctx context.Context, m Mail) error {
	sendErr := d.cfg.Mailer.Send(ctx, m.Message)
	if sendErr != nil && ctx.Err() != nil {
		return nil // shutting down: the lease runs out and it is sent again
	}
	now := d.cfg.Now()
	m.Attempts++
	switch {
	case sendErr == nil:
		m.Status, m.DoneAt, m.LastError = StatusSent, now, ""
		d.cfg.Metrics.inc("sent")
		d.cfg.Metrics.latency(now.Sub(m.CreatedAt))
	case Permanent(sendErr) || errors.Is(sendErr, ErrBadAddress) || errors.Is(sendErr, ErrNoEventID) || m.Attempts >= d.cfg.MaxAttempts:
		m.Status, m.DoneAt, m.LastError = StatusFailed, now, sendErr.Error()
		d.cfg.Metrics.inc("failed")
		d.cfg.Logger.Warn().Err(sendErr).Str("mail", m.ID).Int("attempts", m.Attempts).Msg("notify: mail parked as failed")
	default:
		m.NextAt, m.LastError = now.Add(backoff(m.Attempts, d.cfg.Backoff, d.cfg.MaxBackoff)), sendErr.Error()
		d.cfg.Metrics.inc("retried")
	}
	if err := d.cfg.Outbox.Mark(ctx, m); err != nil {
		return err
	}
	return nil
}

func backoff(n int, base, capped time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < capped; i++ {
		d *= 2
	}
	return min(d, capped)
}

// observeQueue sets the queue's gauges, at most once a second (a
// Deliverer delivers many batches a second under load; the gauges need not
// follow each).
func (d *Deliverer) observeQueue(ctx context.Context, now time.Time) {
	if d.cfg.Metrics == nil {
		return
	}
	last, wall := d.observed.Load(), time.Now().UnixNano()
	if since := wall - last; since >= 0 && since < int64(time.Second) || !d.observed.CompareAndSwap(last, wall) {
		return
	}
	n, oldest, err := d.cfg.Outbox.Pending(ctx)
	if err != nil {
		return
	}
	d.cfg.Metrics.Queue.Set(float64(n))
	if n == 0 {
		d.cfg.Metrics.QueueAge.Set(0)
	} else {
		d.cfg.Metrics.QueueAge.Set(now.Sub(oldest).Seconds())
	}
}

// Metrics of the notifications.
type Metrics struct {
	// Mails: prescripto_mails_total{event}: sent, failed (parked), retried
	// (a failed attempt to be tried again), dropped (over the daily cap),
	// reminder_late_dropped (a reminder whose appointment had started).
	Mails *prometheus.CounterVec
	// Queue and QueueAge: prescripto_mail_queue, the pending mails, and
	// prescripto_mail_queue_age_seconds, the age of the oldest.
	Queue, QueueAge prometheus.Gauge
	// Latency: prescripto_mail_delivery_seconds, from the mail's creation
	// (the fact seen) to its acceptance by the server.
	Latency prometheus.Histogram
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("notify: metrics need a registry")
	}
	m := &Metrics{
		Mails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prescripto_mails_total", Help: "What became of the mails, by event.",
		}, []string{"event"}),
		Queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prescripto_mail_queue", Help: "Mails waiting to be sent.",
		}),
		QueueAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prescripto_mail_queue_age_seconds", Help: "Age of the oldest mail waiting to be sent.",
		}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "prescripto_mail_delivery_seconds", Help: "From a mail's creation to its acceptance by the mail server.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
		}),
	}
	for _, c := range []prometheus.Collector{m.Mails, m.Queue, m.QueueAge, m.Latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) inc(event string) {
	if m != nil {
		m.Mails.WithLabelValues(event).Inc()
	}
}

func (m *Metrics) latency(d time.Duration) {
	if m != nil {
		m.Latency.Observe(d.Seconds())
	}
}
