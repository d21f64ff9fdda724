package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/prescripto/prescripto/projections/analytics/analyticstest"
	"github.com/prescripto/prescripto/projections/memory"
)

// BenchmarkAnalytics: the apply rate of the analytics model over a
// clinic's year (100 doctors, 8 bookings a working day each: about
// 250,000 bookings, 860,000 events), and the latency of the questions
// on the model it built.
//
//	go test -run '^$' -bench Analytics -benchtime 5x ./projections/memory/
func BenchmarkAnalytics(b *testing.B) {
	events := analyticstest.RealisticLog(100, 365, 8)
	b.Run("Apply", func(b *testing.B) {
		for b.Loop() {
			m := memory.NewAnalytics()
			start := time.Now()
			for _, e := range events {
				if err := m.Apply(context.Background(), e); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(events))/time.Since(start).Seconds(), "events/s")
		}
	})
	// The appointments model on the same log, for a ratio that holds on a
	// loaded machine.
	b.Run("ApplyAppointmentsModel", func(b *testing.B) {
		for b.Loop() {
			m := memory.NewAppointments()
			start := time.Now()
			for _, e := range events {
				if err := m.Apply(context.Background(), e); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(events))/time.Since(start).Seconds(), "events/s")
		}
	})
	m := memory.NewAnalytics()
	for _, e := range events {
		if err := m.Apply(context.Background(), e); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d events", len(events))
	analyticstest.BenchQueries(b, analyticstest.Models{View: m, Projection: m})
}
