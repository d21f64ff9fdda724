package projections_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

func TestFreeSlotsAppendJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, kolkata).UTC()
	for _, fs := range []projections.FreeSlots{
		{DoctorID: "d-1", Timezone: "Asia/Kolkata", Days: []projections.DaySlots{
			{Date: "2026-11-26", Slots: []doctor.Slot{{Start: start, End: start.Add(30 * time.Minute)}, {Start: start.Add(time.Hour), End: start.Add(90 * time.Minute)}}},
			{Date: "2026-11-27", Slots: []doctor.Slot{}},
		}},
		{DoctorID: `odd "<id>" é`, Timezone: "", Days: []projections.DaySlots{}},
		{DoctorID: "d-2", Timezone: "UTC", Days: []projections.DaySlots{{Date: "2026-11-26", Slots: []doctor.Slot{{Start: start.Add(123 * time.Millisecond), End: start.Add(time.Minute)}}}}},
	} {
		want, err := json.Marshal(fs)
		if err != nil {
			t.Fatal(err)
		}
		if got := fs.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("AppendJSON\n got %s\nwant %s", got, want)
		}
	}
}
