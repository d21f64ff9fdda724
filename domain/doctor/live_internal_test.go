package doctor

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// The live index against a sorted slice (what it replaced), over random
// inserts and deletes large enough to split, merge and shrink the B-tree
// several levels deep. The aggregate's tests cover it too, but with few
// live appointments at a time, all in one leaf.

func TestLiveIndexAgainstSortedSlice(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		seed   uint64
		ops    int
		span   int64 // starts drawn from [0, span) slots
		delPct int   // share of operations that delete
	}{
		{"grow dense", 1, 20_000, 30_000, 20},
		{"grow sparse", 2, 20_000, 1 << 40, 10},
		{"churn", 3, 40_000, 5_000, 50},
		{"shrink", 4, 30_000, 20_000, 70},
		{"appends only", 5, 10_000, 0, 0}, // span 0: in order, as a load test books
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(c.seed, 0))
			var idx liveIndex
			var ref []interval
			for op := range c.ops {
				if len(ref) > 0 && r.IntN(100) < c.delPct {
					iv := ref[r.IntN(len(ref))]
					idx.remove(iv)
					ref = slices.DeleteFunc(ref, func(x interval) bool { return x == iv })
				} else {
					s := int64(op)
					if c.span > 0 {
						s = r.Int64N(c.span)
					}
					iv := interval{start: s * 10, end: s*10 + 10, id: fmt.Sprint("a", op)}
					if i, dup := slices.BinarySearchFunc(ref, iv, cmpInterval); !dup {
						ref = slices.Insert(ref, i, iv)
					}
					idx.insert(iv)
				}
				if op%997 == 0 || op == c.ops-1 {
					checkLive(t, &idx, ref, r)
				}
			}
			// Remove what is left (and one interval that is not there).
			idx.remove(interval{start: -5, id: "none"})
			for _, iv := range ref {
				idx.remove(iv)
			}
			checkLive(t, &idx, nil, r)
			if idx.root != nil && (len(idx.root.items) != 0 || idx.root.kids != nil) {
				t.Fatalf("empty index keeps a root with %d items, %d children", len(idx.root.items), len(idx.root.kids))
			}
		})
	}
}

func cmpInterval(a, b interval) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

// checkLive compares the index with ref (sorted) and checks the B-tree's
// shape: item counts per node, sorted keys, equal leaf depth.
func checkLive(t *testing.T, idx *liveIndex, ref []interval, r *rand.Rand) {
	t.Helper()
	var got []interval
	idx.all(func(iv interval) bool { got = append(got, iv); return true })
	if !slices.Equal(got, ref) || idx.Len() != len(ref) {
		t.Fatalf("index holds %d (Len %d), reference %d; equal: %v", len(got), idx.Len(), len(ref), slices.Equal(got, ref))
	}
	if idx.root != nil {
		leafDepth := -1
		var walk func(n *liveNode, depth int, root bool)
		walk = func(n *liveNode, depth int, root bool) {
			if !root && (len(n.items) < liveMinItems || len(n.items) > liveMaxItems) {
				t.Fatalf("node with %d items (want %d..%d)", len(n.items), liveMinItems, liveMaxItems)
			}
			if n.kids == nil {
				if leafDepth == -1 {
					leafDepth = depth
				} else if depth != leafDepth {
					t.Fatalf("leaves at depths %d and %d", leafDepth, depth)
				}
				return
			}
			if len(n.kids) != len(n.items)+1 {
				t.Fatalf("inner node with %d items and %d children", len(n.items), len(n.kids))
			}
			for _, k := range n.kids {
				walk(k, depth+1, false)
			}
		}
		walk(idx.root, 0, true)
	}
	// ascend and lastBefore at random points (and at existing starts).
	for range 50 {
		var s int64
		if len(ref) > 0 && r.IntN(2) == 0 {
			s = ref[r.IntN(len(ref))].start + int64(r.IntN(3)-1)
		} else {
			s = r.Int64N(1<<20) - 10
		}
		i, _ := slices.BinarySearchFunc(ref, s, func(iv interval, s int64) int {
			switch {
			case iv.start < s:
				return -1
			case iv.start > s:
				return 1
			}
			return 0
		})
		lb, ok := idx.lastBefore(s)
		if wantOK := i > 0; ok != wantOK || (ok && lb != ref[i-1]) {
			t.Fatalf("lastBefore(%d) = %v %v, want the item before index %d", s, lb, ok, i)
		}
		var from []interval
		idx.ascend(s, func(iv interval) bool { from = append(from, iv); return len(from) < 7 })
		want := ref[i:min(len(ref), i+7)]
		if !slices.Equal(from, want) {
			t.Fatalf("ascend(%d) = %v, want %v", s, from, want)
		}
		from = from[:0]
		for iv, ok := idx.ceil(interval{start: s}); ok && len(from) < 7; iv, ok = idx.higher(iv) {
			from = append(from, iv)
		}
		if !slices.Equal(from, want) {
			t.Fatalf("ceil(%d), higher... = %v, want %v", s, from, want)
		}
	}
}
