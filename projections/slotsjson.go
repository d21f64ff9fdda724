package projections

import (
	"encoding/json"
	"time"
)

// AppendJSON appends f's JSON form (the same document encoding/json makes)
// to b. Free-slot answers are the hottest read of the API and are mostly
// instants: formatting them directly avoids encoding/json's reflection and
// its re-compaction of every time.Time.
func (f FreeSlots) AppendJSON(b []byte) []byte {
	b = append(b, `{"doctorId":`...)
	b = appendString(b, f.DoctorID)
	b = append(b, `,"timezone":`...)
	b = appendString(b, f.Timezone)
	b = append(b, `,"days":[`...)
	for i, d := range f.Days {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"date":`...)
		b = appendString(b, d.Date)
		b = append(b, `,"slots":[`...)
		for j, s := range d.Slots {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"start":"`...)
			b = s.Start.AppendFormat(b, time.RFC3339Nano)
			b = append(b, `","end":"`...)
			b = s.End.AppendFormat(b, time.RFC3339Nano)
			b = append(b, `"}`...)
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}"...)
}

// appendString appends s as a JSON string, plain ASCII without escaping and
// anything else through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
