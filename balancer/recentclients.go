package balancer

import (
	"hash/maphash"
	"math"
	"math/bits"
	"net/netip"
	"sync/atomic"
)

// The recent-clients estimate covers recentMinutes whole minutes, counted
// in bitmaps of recentBits bits (linear counting: about 2% error up to a
// few thousand clients, a floor beyond).
const (
	recentMinutes = 5
	recentBits    = 4096
	recentWords   = recentBits / 64
)

// recentClients estimates how many distinct client addresses were seen in
// the last recentMinutes minutes, without locks or allocation once its
// bitmaps exist (on first use: most backends never need them).
type recentClients struct {
	p atomic.Pointer[recentBitmaps]
}

type recentBitmaps struct {
	seed   maphash.Seed
	minute [recentMinutes]atomic.Int64
	words  [recentMinutes][recentWords]atomic.Uint64
}

// add records client at unix time now (seconds).
func (r *recentClients) add(client netip.Addr, now int64) {
	b := r.p.Load()
	if b == nil {
		r.p.CompareAndSwap(nil, &recentBitmaps{seed: maphash.MakeSeed()})
		b = r.p.Load()
	}
	m := now / 60
	slot := int(m % recentMinutes)
	if old := b.minute[slot].Load(); old != m && b.minute[slot].CompareAndSwap(old, m) {
		// The slot held an older minute: start it afresh. A client added
		// by another request in between may be lost; this is an estimate.
		for i := range b.words[slot] {
			b.words[slot][i].Store(0)
		}
	}
	a := client.As16()
	h := maphash.Bytes(b.seed, a[:]) % recentBits
	b.words[slot][h/64].Or(1 << (h % 64))
}

// estimate returns the estimated number of distinct clients seen in the
// last recentMinutes minutes at unix time now (seconds).
func (r *recentClients) estimate(now int64) int64 {
	b := r.p.Load()
	if b == nil {
		return 0
	}
	m := now / 60
	var union [recentWords]uint64
	for s := range recentMinutes {
		if age := m - b.minute[s].Load(); age < 0 || age >= recentMinutes {
			continue
		}
		for i := range union {
			union[i] |= b.words[s][i].Load()
		}
	}
	set := 0
	for _, w := range union {
		set += bits.OnesCount64(w)
	}
	empty := recentBits - set
	if empty == 0 {
		empty = 1 // saturated: the estimate is a floor
	}
	return int64(math.Round(-recentBits * math.Log(float64(empty)/recentBits)))
}

// reset forgets every client.
func (r *recentClients) reset() { r.p.Store(nil) }
