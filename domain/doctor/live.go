package doctor

// liveIndex is the ordered set of live appointments' intervals, by start
// (then id): a B-tree, so that occupying, releasing and finding the
// neighbours of a slot cost O(log n) in the number n of live appointments
// of the doctor (a sorted slice costs O(n) per insert or delete away from
// its end, and a doctor can hold tens of thousands of future bookings).
//
// Live intervals never overlap (checkSlot refuses an overlapping booking),
// so by start they are in order of end too; overlapping relies on that, as
// the sorted slice before it did.
//
// The tree is the classic one (Bayer and McCreight; the delete is the
// single-pass one of Cormen et al., as in github.com/google/btree): every
// node but the root holds between minItems and maxItems intervals, inner
// nodes one child more than intervals. It is only changed through apply.
type liveIndex struct {
	root *liveNode
	n    int
}

type liveNode struct {
	items []interval  // sorted by (start, id)
	kids  []*liveNode // nil in a leaf, else len(items)+1
}

const (
	liveDegree   = 32
	liveMaxItems = 2*liveDegree - 1
	liveMinItems = liveDegree - 1
)

func (a interval) less(b interval) bool {
	if a.start != b.start {
		return a.start < b.start
	}
	return a.id < b.id
}

// Len is the number of intervals.
func (t *liveIndex) Len() int { return t.n }

// find returns the index of the first item not less than iv, and whether
// it equals iv.
func (n *liveNode) find(iv interval) (int, bool) {
	lo, hi := 0, len(n.items)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if n.items[m].less(iv) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(n.items) && n.items[lo] == iv
}

// firstFrom returns the index of the first item starting at or after s.
func (n *liveNode) firstFrom(s int64) int {
	lo, hi := 0, len(n.items)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if n.items[m].start < s {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// insert adds iv; an equal interval is replaced.
func (t *liveIndex) insert(iv interval) {
	if t.root == nil {
		t.root = &liveNode{items: make([]interval, 0, 4)}
	}
	if len(t.root.items) >= liveMaxItems {
		old := t.root
		mid, right := old.split(liveMaxItems / 2)
		t.root = &liveNode{items: []interval{mid}, kids: []*liveNode{old, right}}
	}
	if t.root.insert(iv) {
		t.n++
	}
}

// split cuts n at item i: n keeps the items before i, the item i moves up,
// a new node takes the rest.
func (n *liveNode) split(i int) (interval, *liveNode) {
	mid := n.items[i]
	right := &liveNode{items: make([]interval, 0, liveMaxItems)}
	right.items = append(right.items, n.items[i+1:]...)
	clear(n.items[i:])
	n.items = n.items[:i]
	if n.kids != nil {
		right.kids = make([]*liveNode, 0, liveMaxItems+1)
		right.kids = append(right.kids, n.kids[i+1:]...)
		clear(n.kids[i+1:])
		n.kids = n.kids[:i+1]
	}
	return mid, right
}

// insert adds iv below a node that is not full; it reports whether the
// tree grew (false: an equal interval was replaced).
func (n *liveNode) insert(iv interval) bool {
	for {
		i, found := n.find(iv)
		if found {
			n.items[i] = iv
			return false
		}
		if n.kids == nil {
			n.items = insertAt(n.items, i, iv)
			return true
		}
		if len(n.kids[i].items) >= liveMaxItems {
			mid, right := n.kids[i].split(liveMaxItems / 2)
			n.items = insertAt(n.items, i, mid)
			n.kids = insertAt(n.kids, i+1, right)
			switch {
			case iv == mid:
				n.items[i] = iv
				return false
			case mid.less(iv):
				i++
			}
		}
		n = n.kids[i]
	}
}

// remove deletes iv if present.
func (t *liveIndex) remove(iv interval) {
	if t.root == nil {
		return
	}
	if t.root.remove(iv) {
		t.n--
	}
	if len(t.root.items) == 0 && t.root.kids != nil {
		t.root = t.root.kids[0]
	}
}

// remove deletes iv from the subtree of n, which holds more than
// liveMinItems items unless it is the root, and reports whether it was
// there. On the way down it makes every node it enters able to spare an
// item (grow), so a leaf never underflows.
func (n *liveNode) remove(iv interval) bool {
	for {
		i, found := n.find(iv)
		if n.kids == nil {
			if !found {
				return false
			}
			n.items = deleteAt(n.items, i)
			return true
		}
		if len(n.kids[i].items) <= liveMinItems {
			n.grow(i)
			continue // the items moved: look again in this node
		}
		if found {
			// Replace it by its predecessor, the greatest item of the
			// left child (which can spare one).
			n.items[i] = n.kids[i].removeMax()
			return true
		}
		n = n.kids[i]
	}
}

// removeMax deletes and returns the greatest item of the subtree of n,
// which holds more than liveMinItems items (or is the root).
func (n *liveNode) removeMax() interval {
	for {
		if n.kids == nil {
			last := n.items[len(n.items)-1]
			n.items[len(n.items)-1] = interval{}
			n.items = n.items[:len(n.items)-1]
			return last
		}
		i := len(n.items)
		if len(n.kids[i].items) <= liveMinItems {
			n.grow(i)
			continue
		}
		n = n.kids[i]
	}
}

// grow gives child i of n more than liveMinItems items: it takes one from a
// sibling through n, or merges it with a sibling and the item between them.
func (n *liveNode) grow(i int) {
	child := n.kids[i]
	switch {
	case i > 0 && len(n.kids[i-1].items) > liveMinItems:
		left := n.kids[i-1]
		child.items = insertAt(child.items, 0, n.items[i-1])
		n.items[i-1] = left.items[len(left.items)-1]
		left.items[len(left.items)-1] = interval{}
		left.items = left.items[:len(left.items)-1]
		if left.kids != nil {
			child.kids = insertAt(child.kids, 0, left.kids[len(left.kids)-1])
			left.kids[len(left.kids)-1] = nil
			left.kids = left.kids[:len(left.kids)-1]
		}
	case i < len(n.items) && len(n.kids[i+1].items) > liveMinItems:
		right := n.kids[i+1]
		child.items = append(child.items, n.items[i])
		n.items[i] = right.items[0]
		right.items = deleteAt(right.items, 0)
		if right.kids != nil {
			child.kids = append(child.kids, right.kids[0])
			right.kids = deleteAt(right.kids, 0)
		}
	default:
		if i >= len(n.items) {
			i--
			child = n.kids[i]
		}
		right := n.kids[i+1]
		child.items = append(child.items, n.items[i])
		child.items = append(child.items, right.items...)
		child.kids = append(child.kids, right.kids...)
		n.items = deleteAt(n.items, i)
		n.kids = deleteAt(n.kids, i+1)
	}
}

// lastBefore returns the greatest interval starting before s.
func (t *liveIndex) lastBefore(s int64) (interval, bool) {
	var out interval
	ok := false
	for n := t.root; n != nil; {
		i := n.firstFrom(s)
		if i > 0 {
			out, ok = n.items[i-1], true
		}
		if n.kids == nil {
			break
		}
		n = n.kids[i]
	}
	return out, ok
}

// ceil returns the least interval not less than key.
func (t *liveIndex) ceil(key interval) (interval, bool) {
	return t.seek(key, false)
}

// higher returns the least interval greater than key.
func (t *liveIndex) higher(key interval) (interval, bool) {
	return t.seek(key, true)
}

// seek descends once from the root, remembering the last candidate: the
// first item of each node not less than key (strict: greater than key).
func (t *liveIndex) seek(key interval, strict bool) (interval, bool) {
	var out interval
	ok := false
	for n := t.root; n != nil; {
		lo, hi := 0, len(n.items)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if n.items[m].less(key) || (strict && n.items[m] == key) {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo < len(n.items) {
			out, ok = n.items[lo], true
			if !strict && n.items[lo] == key {
				return out, true
			}
		}
		if n.kids == nil {
			break
		}
		n = n.kids[lo]
	}
	return out, ok
}

// ascend calls fn for every interval starting at or after s, in order,
// until fn returns false.
func (t *liveIndex) ascend(s int64, fn func(interval) bool) {
	if t.root != nil {
		t.root.ascend(s, fn)
	}
}

func (n *liveNode) ascend(s int64, fn func(interval) bool) bool {
	i := n.firstFrom(s)
	for ; i < len(n.items); i++ {
		if n.kids != nil && !n.kids[i].ascend(s, fn) {
			return false
		}
		if !fn(n.items[i]) {
			return false
		}
	}
	if n.kids != nil {
		return n.kids[i].ascend(s, fn)
	}
	return true
}

// all calls fn for every interval in order.
func (t *liveIndex) all(fn func(interval) bool) {
	t.ascend(minStart, fn)
}

const minStart = -1 << 63

func insertAt[T any](s []T, i int, v T) []T {
	var zero T
	s = append(s, zero)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

func deleteAt[T any](s []T, i int) []T {
	copy(s[i:], s[i+1:])
	var zero T
	s[len(s)-1] = zero
	return s[:len(s)-1]
}
