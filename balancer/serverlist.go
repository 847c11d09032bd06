package balancer

import "iter"

// serverChunk is how many servers one chunk of a serverList holds.
const serverChunk = 64

// serverList is a backend's servers in ID order, kept as a persistent
// vector: a copy made by clone shares the original's storage, and setting
// one server copies only the chunk that holds it, so a change to one server
// of a large backend copies a few hundred bytes rather than the whole list.
type serverList struct {
	chunks [][]*serverRT
	// owned marks the chunks this list may write in place; nil means
	// none (every chunk is shared with the list it was cloned from).
	owned []bool
	n     int
}

// Len returns the number of servers.
func (l *serverList) Len() int { return l.n }

// At returns the server at position i.
func (l *serverList) At(i int) *serverRT { return l.chunks[i/serverChunk][i%serverChunk] }

// All yields the positions and servers in order.
func (l *serverList) All() iter.Seq2[int, *serverRT] {
	return func(yield func(int, *serverRT) bool) {
		i := 0
		for _, c := range l.chunks {
			for _, s := range c {
				if !yield(i, s) {
					return
				}
				i++
			}
		}
	}
}

// clone returns a list sharing l's chunks; writing to either copies the
// chunk written.
func (l *serverList) clone() serverList {
	return serverList{chunks: append([][]*serverRT(nil), l.chunks...), n: l.n}
}

// own makes chunk c writable in place, copying it when it is shared.
func (l *serverList) own(c int) {
	if l.owned == nil {
		l.owned = make([]bool, len(l.chunks), cap(l.chunks))
	}
	if !l.owned[c] {
		cp := make([]*serverRT, len(l.chunks[c]), serverChunk)
		copy(cp, l.chunks[c])
		l.chunks[c] = cp
		l.owned[c] = true
	}
}

// Set replaces the server at position i.
func (l *serverList) Set(i int, s *serverRT) {
	l.own(i / serverChunk)
	l.chunks[i/serverChunk][i%serverChunk] = s
}

// Append adds s at the end.
func (l *serverList) Append(s *serverRT) {
	if l.n%serverChunk == 0 {
		l.chunks = append(l.chunks, make([]*serverRT, 0, serverChunk))
		if l.owned != nil {
			l.owned = append(l.owned, true)
		} else {
			l.owned = make([]bool, len(l.chunks))
			l.owned[len(l.chunks)-1] = true
		}
	} else {
		l.own(len(l.chunks) - 1)
	}
	last := len(l.chunks) - 1
	l.chunks[last] = append(l.chunks[last], s)
	l.n++
}

// Delete removes the server at position i; the servers after it move up.
func (l *serverList) Delete(i int) {
	var rest serverList
	for j, s := range l.All() {
		if j != i {
			rest.Append(s)
		}
	}
	*l = rest
}
