package commands

import (
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

// AppointmentResult is an appointment as a command left it.
type AppointmentResult struct {
	Appointment doctor.Appointment
	DoctorName  string
	Timezone    string // the doctor's IANA zone ("" before a schedule)
	// Position is the event-store position of the command's last event.
	Position uint64
}

// DoctorResult is a doctor as a command left it.
type DoctorResult struct {
	ID       string
	Profile  doctor.Profile
	Schedule *doctor.Schedule // nil before a schedule is set
	Position uint64
}

// appointmentView reads an appointment off the aggregate, its patient's
// name and the cancel reason opened (left out when the keys cannot be
// reached: the command stands; a read of the appointment shows them).
func (h *Handler) appointmentView(id string, out *AppointmentResult) viewFunc {
	return func(d *doctor.Doctor) {
		out.Appointment, _ = d.Appointment(id)
		a := &out.Appointment
		var err error
		if a.PatientName, err = h.reg.OpenValue(a.PatientName); err != nil {
			a.PatientName = ""
		}
		if a.CancelReason, err = h.reg.OpenValue(a.CancelReason); err != nil {
			a.CancelReason = ""
		}
		if a.PatientID != "" && h.reg.IsErased(a.PatientID) {
			// (events written before sealing hold the name in the clear)
			a.PatientName = domain.Erased
			if a.CancelReason != "" {
				a.CancelReason = domain.Erased
			}
		}
		out.DoctorName = d.Profile().Name
		if g := d.Grid(); g != nil {
			out.Timezone = g.Schedule().Timezone
		}
	}
}

func doctorView(out *DoctorResult) viewFunc {
	return func(d *doctor.Doctor) {
		out.ID = d.ID()
		out.Profile = d.Profile()
		if g := d.Grid(); g != nil {
			s := g.Schedule()
			out.Schedule = &s
		}
	}
}
