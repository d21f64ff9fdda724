package mongo_test

import (
	"context"
	"testing"
	"time"

	"github.com/prescripto/prescripto/projections/analytics/analyticstest"
)

// BenchmarkAnalyticsFerretDB: the apply rate of the analytics model on
// FerretDB in batches of 1,000 (as the runner and a rebuild apply a
// backlog), and the latency of the questions on what it built: 5 doctors
// over a year, 2 bookings a working day each (about 3,100 bookings, 9,600
// events; a small log, for time).
//
//	go test -run '^$' -bench AnalyticsFerretDB -benchtime 1x -timeout 60m ./projections/mongo/
func BenchmarkAnalyticsFerretDB(b *testing.B) {
	newDB := server(b)
	events := analyticstest.RealisticLog(5, 365, 2)
	m := open(b, newDB(b))
	b.Run("ApplyBatch1000", func(b *testing.B) {
		for b.Loop() {
			if err := m.Analytics.Reset(context.Background()); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			for i := 0; i < len(events); i += 1000 {
				if err := m.Analytics.ApplyBatch(context.Background(), events[i:min(i+1000, len(events))]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(events))/time.Since(start).Seconds(), "events/s")
		}
	})
	b.Logf("%d events", len(events))
	analyticstest.BenchQueries(b, analyticstest.Models{View: m.Analytics, Projection: m.Analytics})
}
