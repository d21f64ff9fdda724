package sqlite

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/eventstore"
)

// A realistic event: ~180 bytes of JSON data and ~100 of metadata.
const (
	benchData = `{"appointment_id":"7f1c2d3e-0000-4000-8000-000000000001","doctor_id":"doc-42","patient_id":"pat-1337","starts_at":"2030-01-02T09:30:00Z","duration_min":30,"reason":"follow-up"}`
	benchMeta = `{"actor":"pat-1337","correlation_id":"c-0001","causation_id":"k-0001","command":"BookAppointment"}`
)

func benchEvent() eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: "AppointmentBooked", Data: []byte(benchData), Metadata: []byte(benchMeta)}
}

func reportRate(b *testing.B, n int, unit string) {
	if secs := b.Elapsed().Seconds(); secs > 0 {
		b.ReportMetric(float64(n)/secs, unit)
	}
}

// BenchmarkAppendSingle: one goroutine appends one event at a time to one
// stream, at Exact revisions: every append waits for its own fsync.
func BenchmarkAppendSingle(b *testing.B) {
	s, _ := openTemp(b)
	ctx := context.Background()
	exp := eventstore.NoStream
	batch := make([]eventstore.EventData, 1)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		batch[0] = benchEvent()
		res, err := s.Append(ctx, "doctor-42", exp, batch)
		if err != nil {
			b.Fatal(err)
		}
		exp = eventstore.Exact(res.NextExpectedRevision)
		n++
	}
	reportRate(b, n, "appends/s")
}

// BenchmarkAppendConcurrent: 64 goroutines, each appending one event at a
// time to its own stream at Exact revisions; group commit shares fsyncs.
func BenchmarkAppendConcurrent(b *testing.B) {
	s, _ := openTemp(b)
	const goroutines = 64
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((goroutines + procs - 1) / procs)
	var streams atomic.Int64
	before := s.Stats()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		stream := fmt.Sprintf("doctor-%d", streams.Add(1))
		exp := eventstore.NoStream
		batch := make([]eventstore.EventData, 1)
		for pb.Next() {
			batch[0] = benchEvent()
			res, err := s.Append(ctx, stream, exp, batch)
			if err != nil {
				b.Error(err)
				return
			}
			exp = eventstore.Exact(res.NextExpectedRevision)
		}
	})
	reportRate(b, b.N, "appends/s")
	st := s.Stats()
	if commits := st.Commits - before.Commits; commits > 0 {
		b.ReportMetric(float64(st.Appends-before.Appends)/float64(commits), "appends/commit")
	}
}

// BenchmarkReadStream reads pages of 100 events of a 1,000-event stream.
func BenchmarkReadStream(b *testing.B) {
	s, _ := openTemp(b)
	ctx := context.Background()
	exp := eventstore.NoStream
	for range 10 {
		batch := make([]eventstore.EventData, 100)
		for i := range batch {
			batch[i] = benchEvent()
		}
		res, err := s.Append(ctx, "doctor-42", exp, batch)
		if err != nil {
			b.Fatal(err)
		}
		exp = eventstore.Exact(res.NextExpectedRevision)
	}
	b.ReportAllocs()
	events, i := 0, 0
	for b.Loop() {
		evs, err := s.ReadStream(ctx, "doctor-42", uint64(i%10)*100, eventstore.Forward, 100)
		if err != nil || len(evs) != 100 {
			b.Fatalf("read %d events: %v", len(evs), err)
		}
		events += len(evs)
		i++
	}
	reportRate(b, i, "reads/s")
	reportRate(b, events, "events/s")
}
