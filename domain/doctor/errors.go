package doctor

import "github.com/prescripto/prescripto/domain"

// Sentinel errors of the doctor aggregate. Each has a kind (domain.Err*) and
// a stable code; wrap them with domain.Detail for a more specific message.
var (
	ErrDoctorNotFound      = domain.NewError(domain.ErrNotFound, "doctor_not_found", "doctor not found")
	ErrDoctorExists        = domain.NewError(domain.ErrConflict, "doctor_exists", "doctor already registered")
	ErrAppointmentNotFound = domain.NewError(domain.ErrNotFound, "appointment_not_found", "appointment not found")
	ErrAppointmentExists   = domain.NewError(domain.ErrConflict, "appointment_exists", "an appointment with this id exists")

	ErrInvalidProfile  = domain.NewError(domain.ErrInvalid, "invalid_profile", "invalid doctor profile")
	ErrInvalidSchedule = domain.NewError(domain.ErrInvalid, "invalid_schedule", "invalid schedule")
	ErrInvalidTimeOff  = domain.NewError(domain.ErrInvalid, "invalid_time_off", "invalid time off")
	ErrInvalidSlot     = domain.NewError(domain.ErrInvalid, "invalid_slot", "invalid slot")

	ErrSlotUnavailable    = domain.NewError(domain.ErrConflict, "slot_unavailable", "the slot is already taken")
	ErrOutsideSchedule    = domain.NewError(domain.ErrUnprocessable, "outside_schedule", "the slot is not on the doctor's schedule")
	ErrInThePast          = domain.NewError(domain.ErrUnprocessable, "in_the_past", "the slot is in the past")
	ErrInsufficientNotice = domain.NewError(domain.ErrUnprocessable, "insufficient_notice", "the slot starts too soon to be booked")
	ErrBeyondWindow       = domain.NewError(domain.ErrUnprocessable, "beyond_booking_window", "the slot is beyond the booking window")
	ErrDoctorUnavailable  = domain.NewError(domain.ErrUnprocessable, "doctor_unavailable", "the doctor is not taking appointments")
	ErrDoctorTimeOff      = domain.NewError(domain.ErrUnprocessable, "doctor_time_off", "the doctor is away at that time")
	ErrNoSchedule         = domain.NewError(domain.ErrUnprocessable, "outside_schedule", "the doctor has no schedule yet")

	ErrBookingsInRange       = domain.NewError(domain.ErrConflict, "bookings_in_range", "bookings exist in that range; set cancelBookings to cancel them")
	ErrInvalidTransition     = domain.NewError(domain.ErrConflict, "invalid_transition", "the appointment is not in a state that allows this")
	ErrAppointmentStarted    = domain.NewError(domain.ErrUnprocessable, "appointment_started", "the appointment has already started")
	ErrAppointmentNotStarted = domain.NewError(domain.ErrUnprocessable, "appointment_not_started", "the appointment has not started yet")
	ErrHoldActive            = domain.NewError(domain.ErrConflict, "hold_active", "the hold has not expired yet")
	ErrPaymentNotNeeded      = domain.NewError(domain.ErrConflict, "payment_not_needed", "nothing is to be paid online for this appointment")
	ErrPaymentMismatch       = domain.NewError(domain.ErrUnprocessable, "payment_mismatch", "the payment does not match the appointment's order")
	ErrPaymentUnknown        = domain.NewError(domain.ErrUnprocessable, "payment_unknown", "no such captured payment on this appointment")
	ErrNotAllowed            = domain.NewError(domain.ErrForbidden, "forbidden", "not allowed")
)
