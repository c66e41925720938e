package secret

// matcher is an Aho–Corasick automaton: it reads a stream one byte at a
// time and knows, after each byte, the longest pattern ending there and how
// many of the last bytes could still begin a match. The cost per byte does
// not depend on the number of patterns.
//
// Bytes map to classes first (every byte used by a pattern has its own,
// all others share one) so rows stay short. The states nearest the root,
// where ordinary text keeps the automaton, get full transition rows; deeper
// states keep only their trie children and fall back along failure links,
// which bounds memory for long secrets (a key of several KiB has tens of
// thousands of states) while leaving the common path a single table lookup.
//
// Most log text is not a secret, and the automaton is latency-bound (each
// step waits for the previous lookup), so scan skips ahead with a cheap
// independent test while it can: when the automaton is at most one byte
// deep, a byte pair that begins no pattern means the second byte starts
// afresh.
type matcher struct {
	cls    [256]uint8
	ncls   int
	maxLen int

	// pairs is a bit set of the byte pairs a match can start with; a pattern
	// of one byte b adds every pair ending in b, so none is skipped.
	pairs [1 << 16 / 64]uint64
	// nshallow counts the states at depth 0 or 1, which come first.
	nshallow int32

	ndense int32   // states [0, ndense) have rows in delta
	delta  []int32 // ndense × ncls transitions

	// Trie children of the sparse states s ≥ ndense:
	// edges[edgeOff[s-ndense]:edgeOff[s-ndense+1]].
	edgeOff []int32
	edges   []edge

	fail  []int32
	match []int32 // length of the longest pattern ending in this state, 0 if none
	keep  []int32 // length of the longest suffix that is a proper prefix of a pattern
}

type edge struct {
	cls uint8
	to  int32
}

// denseCells bounds the transition table: 1 MiB of int32.
const denseCells = 1 << 18

// span is a half-open range [start, end) of stream positions to mask.
type span struct{ start, end int64 }

// newMatcher compiles non-empty patterns; it returns nil when there are none.
// At most cells transitions are stored densely.
func newMatcher(patterns []string, cells int) *matcher {
	if len(patterns) == 0 {
		return nil
	}
	m := &matcher{}
	var used [256]bool
	for _, p := range patterns {
		m.maxLen = max(m.maxLen, len(p))
		for i := 0; i < len(p); i++ {
			used[p[i]] = true
		}
	}
	k := 0
	for b := range used {
		if used[b] {
			m.cls[b] = uint8(k)
			k++
		}
	}
	m.ncls = k
	if k < 256 {
		for b := range used {
			if !used[b] {
				m.cls[b] = uint8(k)
			}
		}
		m.ncls = k + 1
	}
	for _, p := range patterns {
		if len(p) == 1 {
			for x := range 256 {
				m.addPair(byte(x), p[0])
			}
		} else {
			m.addPair(p[0], p[1])
		}
	}
	m.compile(buildTrie(m, patterns), cells)
	return m
}

// trie is the plain prefix tree, before states are renumbered in
// breadth-first order. Children are kept as sibling lists: only the root
// and a few shallow nodes have many.
type trie struct {
	first, next []int32 // first child, next sibling; -1 for none
	label       []uint8 // class of the edge into the node
	term        []int32 // pattern length if a pattern ends here
	depth       []int32
}

func (t *trie) child(n int32, c uint8) int32 {
	for k := t.first[n]; k >= 0; k = t.next[k] {
		if t.label[k] == c {
			return k
		}
	}
	return -1
}

func buildTrie(m *matcher, patterns []string) *trie {
	total := 1
	for _, p := range patterns {
		total += len(p)
	}
	t := &trie{
		first: make([]int32, 1, total), next: make([]int32, 1, total),
		label: make([]uint8, 1, total), term: make([]int32, 1, total), depth: make([]int32, 1, total),
	}
	t.first[0], t.next[0] = -1, -1
	for _, p := range patterns {
		n := int32(0)
		for i := 0; i < len(p); i++ {
			c := m.cls[p[i]]
			k := t.child(n, c)
			if k < 0 {
				k = int32(len(t.first))
				t.first = append(t.first, -1)
				t.next = append(t.next, t.first[n])
				t.label = append(t.label, c)
				t.term = append(t.term, 0)
				t.depth = append(t.depth, t.depth[n]+1)
				t.first[n] = k
			}
			n = k
		}
		t.term[n] = int32(len(p))
	}
	return t
}

// compile numbers the trie's nodes breadth-first (so a failure link always
// points to a smaller number) and fills the automaton's tables.
func (m *matcher) compile(t *trie, cells int) {
	n := len(t.first)
	order := make([]int32, 0, n) // BFS position → trie node
	id := make([]int32, n)       // trie node → BFS position
	order = append(order, 0)
	for i := 0; i < len(order); i++ {
		if i == 1 {
			m.nshallow = int32(len(order))
		}
		for k := t.first[order[i]]; k >= 0; k = t.next[k] {
			id[k] = int32(len(order))
			order = append(order, k)
		}
	}

	// Failure links on trie nodes: the longest proper suffix that is a node.
	tfail := make([]int32, n)
	for _, u := range order {
		for v := t.first[u]; v >= 0; v = t.next[v] {
			if u == 0 {
				continue // depth-1 nodes fail to the root
			}
			f := tfail[u]
			for {
				if k := t.child(f, t.label[v]); k >= 0 {
					tfail[v] = k
					break
				}
				if f == 0 {
					break
				}
				f = tfail[f]
			}
		}
	}

	m.fail = make([]int32, n)
	m.match = make([]int32, n)
	m.keep = make([]int32, n)
	for s, u := range order {
		f := id[tfail[u]]
		m.fail[s] = f
		m.match[s] = max(t.term[u], m.match[f])
		if s == 0 {
			continue
		}
		if t.first[u] >= 0 {
			m.keep[s] = t.depth[u]
		} else {
			m.keep[s] = m.keep[f]
		}
	}

	m.ndense = int32(min(n, max(1, cells/m.ncls)))
	m.delta = make([]int32, int(m.ndense)*m.ncls)
	for s := int32(0); s < m.ndense; s++ {
		row := m.delta[int(s)*m.ncls : int(s+1)*m.ncls]
		if s > 0 {
			f := m.fail[s]
			copy(row, m.delta[int(f)*m.ncls:int(f+1)*m.ncls])
		}
		for k := t.first[order[s]]; k >= 0; k = t.next[k] {
			row[t.label[k]] = id[k]
		}
	}
	m.edgeOff = make([]int32, 0, n-int(m.ndense)+1)
	for s := int(m.ndense); s < n; s++ {
		m.edgeOff = append(m.edgeOff, int32(len(m.edges)))
		for k := t.first[order[s]]; k >= 0; k = t.next[k] {
			m.edges = append(m.edges, edge{cls: t.label[k], to: id[k]})
		}
	}
	m.edgeOff = append(m.edgeOff, int32(len(m.edges)))
}

// scan feeds p, whose first byte is at stream position pos, to the
// automaton from state s. It adds the range of the longest match ending at
// each byte to spans, merging ranges that overlap or touch, and returns the
// new state. spans must be sorted, disjoint and end before pos.
func (m *matcher) scan(s int32, pos int64, p []byte, spans []span) (int32, []span) {
	for i := 0; i < len(p); i++ {
		if c := m.cls[p[i]]; s < m.ndense {
			s = m.delta[int(s)*m.ncls+int(c)]
		} else {
			s = m.deepStep(s, c)
		}
		if l := m.match[s]; l > 0 {
			end := pos + int64(i) + 1
			spans = addSpan(spans, span{end - int64(l), end})
		}
		if s < m.nshallow {
			// The state after p[j] is the root's transition on p[j] while
			// the pair p[j-1], p[j] begins nothing.
			j := i
			for j+1 < len(p) && !m.pair(p[j], p[j+1]) {
				j++
			}
			if j > i {
				i, s = j, m.delta[m.cls[p[j]]]
			}
		}
	}
	return s, spans
}

func (m *matcher) addPair(a, b byte) {
	k := uint(a)<<8 | uint(b)
	m.pairs[k/64] |= 1 << (k % 64)
}

func (m *matcher) pair(a, b byte) bool {
	k := uint(a)<<8 | uint(b)
	return m.pairs[k/64]&(1<<(k%64)) != 0
}

// deepStep is the transition from a sparse state: follow the trie child if
// there is one, else the failure link, until a dense state answers.
func (m *matcher) deepStep(s int32, c uint8) int32 {
	for s >= m.ndense {
		off := s - m.ndense
		for _, e := range m.edges[m.edgeOff[off]:m.edgeOff[off+1]] {
			if e.cls == c {
				return e.to
			}
		}
		s = m.fail[s]
	}
	return m.delta[int(s)*m.ncls+int(c)]
}
