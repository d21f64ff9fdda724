package memory_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/memory"
)

// bigAppointments is an appointments model of n bookings over 200 doctors
// and 10,000 patients, a third paid and one in ten cancelled.
func bigAppointments(b *testing.B, n int) (*memory.Appointments, uint64) {
	m := memory.NewAppointments()
	ctx := context.Background()
	pos := uint64(0)
	at := time.Date(2027, 1, 4, 3, 30, 0, 0, time.UTC)
	apply := func(d domain.Event) {
		pos++
		if err := m.Apply(ctx, projections.Event{Position: pos, Data: d, RecordedAt: at}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 200 {
		apply(doctor.DoctorRegistered{DoctorID: fmt.Sprintf("doctor-%03d", i), Profile: doctor.Profile{Name: fmt.Sprintf("Dr. %03d", i), Currency: "INR"}})
	}
	for i := range n {
		doc, id := fmt.Sprintf("doctor-%03d", i%200), fmt.Sprintf("0193a1b2-c3d4-7e5f-8a9b-%012d", i)
		pat := fmt.Sprintf("0193a1b2-c3d4-7e5f-8a9b-%012d", 1e9+i%10_000)
		start := at.Add(time.Duration(i/200) * 15 * time.Minute)
		apply(doctor.SlotReserved{DoctorID: doc, AppointmentID: id, PatientID: pat, PatientName: "pd1." + pat + ".c2VhbGVkIG5hbWUgb2YgdGhlIHBhdGllbnQgaGVyZQ",
			Start: start, End: start.Add(15 * time.Minute), Status: doctor.StatusConfirmed, Fees: 50000, Currency: "INR", PaymentStatus: doctor.PaymentPending, ReservedAt: at})
		if i%3 == 0 {
			apply(doctor.PaymentCaptured{DoctorID: doc, AppointmentID: id, PaymentID: "pay_" + id[24:], OrderID: "order_" + id[24:], Amount: 50000, Currency: "INR"})
		}
		if i%10 == 0 {
			apply(doctor.AppointmentCancelled{DoctorID: doc, AppointmentID: id, PatientID: pat, Reason: "pd1." + pat + ".c2VhbGVkIHJlYXNvbg", CancelledBy: "patient"})
		}
	}
	return m, pos
}

// BenchmarkAppointmentsState: saving and loading the state of 400,000
// appointments, and the longest Apply of a projector that keeps applying
// during the save (max-apply-ms: how long a save can hold it up).
//
//	go test -run '^$' -bench AppointmentsState -benchtime 3x ./projections/memory/
func BenchmarkAppointmentsState(b *testing.B) {
	m, pos := bigAppointments(b, 400_000)
	var state bytes.Buffer
	b.Run("save", func(b *testing.B) {
		var worst atomic.Int64
		for range b.N {
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { // the projector: cancellations of existing bookings
				defer close(done)
				p := pos
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					p++
					t := time.Now()
					_ = m.Apply(context.Background(), projections.Event{Position: p, Data: doctor.AppointmentCompleted{DoctorID: "doctor-000", AppointmentID: fmt.Sprintf("0193a1b2-c3d4-7e5f-8a9b-%012d", (i*200)%400_000)}})
					if d := time.Since(t).Nanoseconds(); d > worst.Load() {
						worst.Store(d)
					}
				}
			}()
			state.Reset()
			if err := m.SaveState(&state); err != nil {
				b.Fatal(err)
			}
			close(stop)
			<-done
			pos += 1_000_000
		}
		b.ReportMetric(float64(worst.Load())/1e6, "max-apply-ms")
		b.ReportMetric(float64(state.Len()), "state-bytes")
	})
	b.Run("load", func(b *testing.B) {
		for range b.N {
			if err := memory.NewAppointments().LoadState(state.Bytes(), pos); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("save-alone", func(b *testing.B) {
		for range b.N {
			if err := m.SaveState(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
}
