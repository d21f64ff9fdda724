package mongo

import (
	"reflect"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/prescripto/prescripto/projections/analytics"
)

func TestLiveListRoundTrip(t *testing.T) {
	hold := int64(1_893_456_000_000_000_000)
	neg := int64(-5)
	for _, l := range []liveList{
		{},
		{{ID: "a", Start: 1_893_456_000_000_000_000, End: 1_893_456_300_000_000_000}},
		{{ID: "", Start: -1, End: 0, HoldUntil: &neg}, {ID: "8c1f3e2a-5b7d-4c9e-a0f1-2b3c4d5e6f70", Start: 10, End: 8 * 3600e9, HoldUntil: &hold}},
	} {
		doc := bson.D{{Key: "live", Value: l}}
		raw, err := bson.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if typ := bson.Raw(raw).Lookup("live").Type; typ != bson.TypeBinary {
			t.Fatalf("stored as %v, want binary", typ)
		}
		var back struct {
			Live liveList `bson:"live"`
		}
		if err := bson.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Live, l) {
			t.Fatalf("round trip: %+v, want %+v", back.Live, l)
		}
	}
}

// Every truncation of a packed list (its length comes first), trailing
// bytes and a wrong version are errors, not a panic or a shorter list.
func TestLiveListDamaged(t *testing.T) {
	hold := int64(42)
	_, data, err := liveList{{ID: "abc", Start: 100, End: 400, HoldUntil: &hold}, {ID: "de", Start: 500, End: 800}}.MarshalBSONValue()
	if err != nil {
		t.Fatal(err)
	}
	var bin bson.Binary
	if err := bson.UnmarshalValue(bson.TypeBinary, data, &bin); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(bin.Data); n++ {
		_, cut, _ := bson.MarshalValue(bson.Binary{Data: bin.Data[:n]})
		var l liveList
		err := l.UnmarshalBSONValue(byte(bson.TypeBinary), cut)
		if err == nil {
			t.Errorf("cut at %d of %d: %+v, no error", n, len(bin.Data), l)
		}
	}
	_, long, _ := bson.MarshalValue(bson.Binary{Data: append(slices.Clone(bin.Data), 0)})
	if err := new(liveList).UnmarshalBSONValue(byte(bson.TypeBinary), long); err == nil {
		t.Error("trailing bytes read without an error")
	}
	bad := append([]byte{9}, bin.Data[1:]...)
	_, v, _ := bson.MarshalValue(bson.Binary{Data: bad})
	var l liveList
	if err := l.UnmarshalBSONValue(byte(bson.TypeBinary), v); err == nil {
		t.Error("version 9 read without an error")
	}
	if err := l.UnmarshalBSONValue(byte(bson.TypeString), []byte{1, 0, 0, 0, 0}); err == nil {
		t.Error("a string read as live appointments")
	}
}

func TestCountsListRoundTrip(t *testing.T) {
	for _, l := range []countsList{
		{},
		{{ID: "a", Currency: "INR", Counts: analytics.Counts{Booked: 1, BookedSlots: 2, Revenue: 150000}}},
		{{Currency: "USD", Counts: analytics.Counts{Booked: -1, Cancelled: 2, Completed: 3, NoShow: 4, Expired: 5, BookedSlots: 6, Revenue: 1 << 40, Refunded: -7}}, {ID: "b"}},
	} {
		raw, err := bson.Marshal(bson.D{{Key: "counts", Value: l}})
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			Counts countsList `bson:"counts"`
		}
		if err := bson.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Counts, l) {
			t.Fatalf("round trip: %+v, want %+v", back.Counts, l)
		}
	}
	// The array the layout before wrote.
	old := []countsDoc{{ID: "a", Currency: "INR", Counts: analytics.Counts{Booked: 1}}}
	raw, err := bson.Marshal(bson.D{{Key: "counts", Value: old}})
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Counts countsList `bson:"counts"`
	}
	if err := bson.Unmarshal(raw, &back); err != nil || !reflect.DeepEqual([]countsDoc(back.Counts), old) {
		t.Fatalf("an array: %+v, %v", back.Counts, err)
	}
}
