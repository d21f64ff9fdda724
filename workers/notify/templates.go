package notify

import (
	htmltemplate "html/template"
	"strings"
	"text/template"
)

// Kinds of mail (the template names).
const (
	KindBookingConfirmed   = "booking_confirmed"
	KindBookingHeld        = "booking_held"
	KindPaymentReceived    = "payment_received"
	KindHoldExpired        = "hold_expired"
	KindRescheduled        = "rescheduled"
	KindCancelled          = "cancelled"
	KindRefundProcessed    = "refund_processed"
	KindDoctorNewBooking   = "doctor_new_booking"
	KindDoctorCancellation = "doctor_cancellation"
	KindReminder           = "reminder"
)

// mailData is what a template sees. Every string that came from a user
// has been through Clean; the HTML templates escape it again for HTML.
type mailData struct {
	Name          string // the recipient's
	PatientName   string
	DoctorName    string
	When          string // local start, with the zone's abbreviation and name
	PreviousWhen  string
	AppointmentID string
	CancelledBy   string
	Reason        string
	Refund        string // amount to be refunded, or ""
	Amount        string
	PayLink       string
	Lead          string // of a reminder: "24 hours", "1 hour"
}

// mailTemplate is the subject, text and HTML of one kind.
type mailTemplate struct {
	subject *template.Template
	text    *template.Template
	html    *htmltemplate.Template
}

type templateSource struct{ kind, subject, text, html string }

var templateSources = []templateSource{
	{KindBookingConfirmed, "Appointment confirmed: {{.DoctorName}}, {{.When}}",
		"Your appointment with {{.DoctorName}} on {{.When}} is confirmed.",
		"<p>Your appointment with <b>{{.DoctorName}}</b> on <b>{{.When}}</b> is confirmed.</p>"},
	{KindBookingHeld, "Pay to confirm your appointment with {{.DoctorName}}",
		"Your appointment with {{.DoctorName}} on {{.When}} is held until your payment arrives.{{if .PayLink}}\n\nPay here: {{.PayLink}}{{end}}",
		`<p>Your appointment with <b>{{.DoctorName}}</b> on <b>{{.When}}</b> is held until your payment arrives.</p>{{if .PayLink}}<p><a href="{{.PayLink}}">Pay now</a></p>{{end}}`},
	{KindPaymentReceived, "Payment received: {{.Amount}}",
		"We received your payment of {{.Amount}} for your appointment with {{.DoctorName}} on {{.When}}.",
		"<p>We received your payment of <b>{{.Amount}}</b> for your appointment with <b>{{.DoctorName}}</b> on <b>{{.When}}</b>.</p>"},
	{KindHoldExpired, "Reservation expired: {{.DoctorName}}, {{.When}}",
		"No payment arrived in time, so your reservation with {{.DoctorName}} on {{.When}} has lapsed and the slot is free again.",
		"<p>No payment arrived in time, so your reservation with <b>{{.DoctorName}}</b> on <b>{{.When}}</b> has lapsed and the slot is free again.</p>"},
	{KindRescheduled, "Appointment moved: {{.DoctorName}}, {{.When}}",
		"Your appointment with {{.DoctorName}} is moved from {{.PreviousWhen}} to {{.When}}.",
		"<p>Your appointment with <b>{{.DoctorName}}</b> is moved from {{.PreviousWhen}} to <b>{{.When}}</b>.</p>"},
	{KindCancelled, "Appointment cancelled: {{.DoctorName}}, {{.When}}",
		"Your appointment with {{.DoctorName}} on {{.When}} is cancelled by {{.CancelledBy}}.{{if .Reason}}\nReason: {{.Reason}}{{end}}{{if .Refund}}\nA refund of {{.Refund}} is on its way.{{end}}",
		"<p>Your appointment with <b>{{.DoctorName}}</b> on <b>{{.When}}</b> is cancelled by {{.CancelledBy}}.</p>{{if .Reason}}<p>Reason: {{.Reason}}</p>{{end}}{{if .Refund}}<p>A refund of <b>{{.Refund}}</b> is on its way.</p>{{end}}"},
	{KindRefundProcessed, "Refund processed: {{.Amount}}",
		"Your refund of {{.Amount}} for the appointment with {{.DoctorName}} on {{.When}} has been paid back.",
		"<p>Your refund of <b>{{.Amount}}</b> for the appointment with <b>{{.DoctorName}}</b> on <b>{{.When}}</b> has been paid back.</p>"},
	{KindDoctorNewBooking, "New booking: {{.PatientName}}, {{.When}}",
		"{{.PatientName}} booked an appointment with you on {{.When}}.",
		"<p><b>{{.PatientName}}</b> booked an appointment with you on <b>{{.When}}</b>.</p>"},
	{KindDoctorCancellation, "Cancelled: {{.PatientName}}, {{.When}}",
		"The appointment of {{.PatientName}} on {{.When}} is cancelled by {{.CancelledBy}}.{{if .Reason}}\nReason: {{.Reason}}{{end}}",
		"<p>The appointment of <b>{{.PatientName}}</b> on <b>{{.When}}</b> is cancelled by {{.CancelledBy}}.</p>{{if .Reason}}<p>Reason: {{.Reason}}</p>{{end}}"},
	{KindReminder, "Reminder: {{.DoctorName}} in {{.Lead}}, {{.When}}",
		"A reminder: your appointment with {{.DoctorName}} is on {{.When}}, in {{.Lead}}.",
		"<p>A reminder: your appointment with <b>{{.DoctorName}}</b> is on <b>{{.When}}</b>, in {{.Lead}}.</p>"},
}

const textFrame = "Dear {{.Name}},\n\n{{template \"body\" .}}\n\nAppointment id: {{.AppointmentID}}\n\nPrescripto\n"

const htmlFrame = `<!doctype html><html><body style="font-family:sans-serif"><p>Dear {{.Name}},</p>{{template "body" .}}<p style="color:#666">Appointment id: {{.AppointmentID}}</p><p>Prescripto</p></body></html>`

// templates are parsed once; a bad template is a programming error caught
// by every test.
var templates = func() map[string]mailTemplate {
	out := map[string]mailTemplate{}
	for _, s := range templateSources {
		out[s.kind] = mailTemplate{
			subject: template.Must(template.New("subject").Parse(s.subject)),
			text:    template.Must(template.Must(template.New("frame").Parse(textFrame)).New("body").Parse(s.text)),
			html:    htmltemplate.Must(htmltemplate.Must(htmltemplate.New("frame").Parse(htmlFrame)).New("body").Parse(s.html)),
		}
	}
	return out
}()

// render fills kind's templates with d.
func render(kind string, d mailData) (subject, text, html string, err error) {
	t, ok := templates[kind]
	if !ok {
		return "", "", "", errUnknownKind
	}
	var s, b, h strings.Builder
	if err := t.subject.Execute(&s, d); err != nil {
		return "", "", "", err
	}
	if err := t.text.ExecuteTemplate(&b, "frame", d); err != nil {
		return "", "", "", err
	}
	if err := t.html.ExecuteTemplate(&h, "frame", d); err != nil {
		return "", "", "", err
	}
	return Clean(s.String()), b.String(), h.String(), nil
}
