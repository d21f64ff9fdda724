package app_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/internal/testenv"
)

type analyticsRow struct {
	Key, Label, Currency                                             string
	Booked, Cancelled, Completed, NoShow, Expired, Revenue, Refunded int64
}

type utilisationRow struct {
	DoctorID, DoctorName      string
	OfferedSlots, BookedSlots int64
	Ratio                     float64
}

// TestAnalyticsEndToEnd books, pays (the Razorpay emulator), lets a hold
// run out, cancels with a refund, completes and marks a no-show through
// the API, then reads the analytics as an analyst: in JSON and CSV, with
// no patient anywhere in them, and the same after a rebuild.
func TestAnalyticsEndToEnd(t *testing.T) {
	t.Parallel()
	analyticsStory(t, testenv.Options{})
}

// The same on the production wiring (FerretDB, Redis).
func TestProductionAnalytics(t *testing.T) {
	t.Parallel()
	analyticsStory(t, testenv.Options{Production: true})
}

func analyticsStory(t *testing.T, o testenv.Options) {
	o.TokenTTL = 72 * time.Hour // the story's clock moves a day and a half
	r := newPayRig(t, o)
	skin := r.NewDoctor(t, "Dr. Skin", "Dermatology")
	p := r.patient
	paidBooking := func(start time.Time) testenv.Appointment {
		a := r.MustBook(t, p.Token, r.required.ID, start)
		_, ord := r.order(t, p.Token, a.ID)
		c, err := r.Razorpay.Pay(ord.OrderID)
		if err != nil {
			t.Fatal(err)
		}
		r.verify(t, p.Token, c).Must(t, http.StatusOK)
		return a
	}
	completed := paidBooking(testenv.At(1, 10, 0))
	refunded := paidBooking(testenv.At(1, 11, 0))
	cancelled := r.MustBook(t, p.Token, r.optional.ID, testenv.At(1, 13, 0))
	noShow := r.MustBook(t, p.Token, skin.ID, testenv.At(1, 14, 0))
	expired := r.MustBook(t, p.Token, r.required.ID, testenv.At(1, 15, 0))

	r.Clock.Advance(15 * time.Minute) // the unpaid hold runs out
	r.await(t, p.Token, expired.ID, "expiry", func(a testenv.Appointment) bool { return a.Status == "expired" })
	r.Post(t, "/appointments/"+refunded.ID+"/cancel", r.required.Token, map[string]string{"reason": "doctor away"}).Must(t, http.StatusOK)
	r.await(t, p.Token, refunded.ID, "refund", func(a testenv.Appointment) bool { return a.Payment.Status == "refunded" })
	r.Post(t, "/appointments/"+cancelled.ID+"/cancel", p.Token, map[string]string{"reason": "plans changed"}).Must(t, http.StatusOK)
	r.Clock.Set(testenv.At(1, 16, 0))
	r.Post(t, "/appointments/"+completed.ID+"/complete", r.required.Token, nil).Must(t, http.StatusOK)
	r.Post(t, "/appointments/"+noShow.ID+"/no-show", skin.Token, nil).Must(t, http.StatusOK)

	email := r.Unique("analyst") + "@clinic.test"
	r.Post(t, "/admin/users", r.AdminToken, map[string]string{"name": "Ana Lyst", "email": email, "password": testenv.Password, "role": "analyst"}).Must(t, http.StatusCreated)
	analyst := r.Login(t, email, testenv.Password).Token
	head := r.Head(t)
	get := func(path, accept string) *testenv.Res {
		q := testenv.Req{Method: http.MethodGet, Path: path, Token: analyst, MinPosition: head}
		if accept != "" {
			q.Header = http.Header{"Accept": {accept}}
		}
		return r.Do(t, q).Must(t, http.StatusOK)
	}
	span := "from=" + testenv.Date(0) + "&to=" + testenv.Date(6)
	bookings := func(group string) []analyticsRow {
		var out struct{ Rows []analyticsRow }
		get("/analytics/bookings?"+span+"&groupBy="+group, "").Decode(t, &out)
		return out.Rows
	}
	held := analyticsRow{Key: r.required.ID, Label: "Dr. Held", Currency: "INR", Booked: 3, Cancelled: 1, Completed: 1, Expired: 1, Revenue: 100000, Refunded: 50000}
	optional := analyticsRow{Key: r.optional.ID, Label: "Dr. Optional", Currency: "INR", Booked: 1, Cancelled: 1}
	skinRow := analyticsRow{Key: skin.ID, Label: "Dr. Skin", Currency: "INR", Booked: 1, NoShow: 1}
	want := map[string][]analyticsRow{
		"doctor": {held, optional, skinRow},
		"day": {{Key: testenv.Date(1), Label: testenv.Date(1), Currency: "INR", Booked: 5, Cancelled: 2, Completed: 1, NoShow: 1, Expired: 1,
			Revenue: 100000, Refunded: 50000}},
		"speciality": {
			{Key: "Cardiology", Label: "Cardiology", Currency: "INR", Booked: 4, Cancelled: 2, Completed: 1, Expired: 1, Revenue: 100000, Refunded: 50000},
			{Key: "Dermatology", Label: "Dermatology", Currency: "INR", Booked: 1, NoShow: 1},
		},
	}
	check := func(when string) {
		t.Helper()
		for group, rows := range want {
			if got := bookings(group); fmt.Sprint(got) != fmt.Sprint(rows) {
				t.Errorf("%s: bookings by %s:\n got %+v\nwant %+v", when, group, got, rows)
			}
		}
		// Every doctor works 10:00-21:00 in 30 minutes: 22 slots a day.
		var u struct{ Rows []utilisationRow }
		get("/analytics/utilisation?from="+testenv.Date(1)+"&to="+testenv.Date(1), "").Decode(t, &u)
		wantU := []utilisationRow{
			{DoctorID: r.required.ID, DoctorName: "Dr. Held", OfferedSlots: 22, BookedSlots: 1, Ratio: 0.0455},
			{DoctorID: r.optional.ID, DoctorName: "Dr. Optional", OfferedSlots: 22},
			{DoctorID: skin.ID, DoctorName: "Dr. Skin", OfferedSlots: 22, BookedSlots: 1, Ratio: 0.0455},
		}
		if fmt.Sprint(u.Rows) != fmt.Sprint(wantU) {
			t.Errorf("%s: utilisation:\n got %+v\nwant %+v", when, u.Rows, wantU)
		}
	}
	check("incremental")

	// CSV: the same rows, a header, RFC 4180.
	res := get("/analytics/bookings?"+span+"&groupBy=doctor", "text/csv")
	if ct := res.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := res.Header.Get("Content-Disposition"); cd != "attachment; filename=bookings-by-doctor-"+testenv.Date(0)+"-"+testenv.Date(6)+".csv" {
		t.Errorf("Content-Disposition %q", cd)
	}
	recs, err := csv.NewReader(bytes.NewReader(res.Body)).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v\n%s", err, res.Body)
	}
	if strings.Join(recs[0], ",") != "key,label,booked,cancelled,completed,noShow,expired,revenue,refunded,currency" || len(recs) != 4 {
		t.Fatalf("CSV %q", recs)
	}
	for i, w := range want["doctor"] {
		got := recs[i+1]
		exp := []string{w.Key, w.Label, itoa(w.Booked), itoa(w.Cancelled), itoa(w.Completed), itoa(w.NoShow), itoa(w.Expired), itoa(w.Revenue), itoa(w.Refunded), w.Currency}
		if strings.Join(got, ",") != strings.Join(exp, ",") {
			t.Errorf("CSV row %d = %q, want %q", i+1, got, exp)
		}
	}
	if !bytes.Contains(res.Body, []byte("\r\n")) {
		t.Errorf("CSV lines do not end in CRLF: %q", res.Body)
	}
	ures := get("/analytics/utilisation?from="+testenv.Date(1)+"&to="+testenv.Date(1), "text/csv;q=0.9, application/json;q=0.5")
	if !strings.HasPrefix(string(ures.Body), "doctorId,doctorName,offeredSlots,bookedSlots,ratio\r\n") || !strings.Contains(string(ures.Body), ",Dr. Held,22,1,0.0455\r\n") {
		t.Errorf("utilisation CSV %q", ures.Body)
	}
	if jres := get("/analytics/utilisation?from="+testenv.Date(1)+"&to="+testenv.Date(1), "application/json, text/csv;q=0.5"); !strings.HasPrefix(jres.Header.Get("Content-Type"), "application/json") {
		t.Errorf("JSON preferred, answered %q", jres.Header.Get("Content-Type"))
	}

	// No patient in any answer: name, email, id.
	var bodies []byte
	for _, group := range []string{"day", "doctor", "speciality"} {
		for _, accept := range []string{"", "text/csv"} {
			bodies = append(bodies, get("/analytics/bookings?"+span+"&groupBy="+group, accept).Body...)
		}
	}
	for _, accept := range []string{"", "text/csv"} {
		bodies = append(bodies, get("/analytics/utilisation?"+span, accept).Body...)
	}
	for _, s := range []string{p.User.ID, p.User.Name, p.User.Email, "Pia"} {
		if bytes.Contains(bodies, []byte(s)) {
			t.Errorf("analytics answers show the patient's %q", s)
		}
	}

	// A rebuild from the log gives the same answers.
	r.Post(t, "/admin/projections/analytics/rebuild", r.AdminToken, nil).Must(t, http.StatusAccepted)
	waitProjectionsRunning(t, r.Env)
	check("after a rebuild")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
