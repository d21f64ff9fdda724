//go:build unix

package chain_test

// BenchmarkVerify measures Verify on a log of PRESCRIPTO_VERIFY_EVENTS
// events (default 100,000; docs/performance.md uses 1,000,000) in a SQLite
// file, written through the chain, 100 events a stream:
//
//	PRESCRIPTO_VERIFY_EVENTS=1000000 go test -run '^$' -bench Verify -benchtime=3x ./eventstore/chain/
//
// Events are the size of a SlotReserved with its metadata (about 370 bytes
// of data and 200 of metadata, as stored). Besides events/s (wall clock,
// which on a shared machine is the share of the CPU the run got), it
// reports cpu-us/event (user+system CPU time of the process, from
// getrusage): 1e6/cpu-us/event is the rate of one core given to it.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/chain"
)

func BenchmarkVerify(b *testing.B) {
	n := 100_000
	if v := os.Getenv("PRESCRIPTO_VERIFY_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			b.Fatalf("PRESCRIPTO_VERIFY_EVENTS=%q: want a number of events from 100", v)
		}
	}
	const perStream = 100
	inner := openSQLite(b, filepath.Join(b.TempDir(), "events.db"))
	s := chain.Wrap(inner)
	data := []byte(`{"doctorId":"0190f3c4-0000-7000-8000-000000000000","appointmentId":"0190f3c4-0000-7000-8000-000000000001","patientId":"0190f3c4-0000-7000-8000-000000000009","patientName":"sealed:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","start":"2026-12-02T04:30:00Z","end":"2026-12-02T04:35:00Z","status":"confirmed","fees":50000,"currency":"INR","paymentStatus":"not_required","reservedAt":"2026-12-01T03:00:00Z"}`)
	md := []byte(`{"eventId":"0190f3c4-0000-7000-8000-000000000002","actor":{"userId":"0190f3c4-0000-7000-8000-000000000009","role":"patient"},"correlationId":"c-1","requestId":"r-1","occurredAt":"2026-12-01T03:00:00Z"}`)
	start := time.Now()
	ctx := context.Background()
	batch := make([]eventstore.EventData, perStream)
	for st := 0; st*perStream < n; st++ {
		for i := range batch {
			batch[i] = eventstore.EventData{ID: uuid.Must(uuid.NewV7()), Type: "doctor.SlotReserved.v1", Data: data, Metadata: md}
		}
		if _, err := s.Append(ctx, fmt.Sprintf("doctor-%07d", st), eventstore.NoStream, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("built %d events in %s", n, time.Since(start).Round(time.Millisecond))
	b.ResetTimer()
	cpu0 := cpuTime()
	var rep chain.Report
	for b.Loop() {
		var err error
		if rep, err = chain.Verify(ctx, inner, chain.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	if !rep.OK || rep.Events != uint64(n) {
		b.Fatalf("report %+v", rep)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(rep.Events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(cpu.Microseconds())/(float64(rep.Events)*float64(b.N)), "cpu-us/event")
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
