package web

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"tether/balancer"
)

const (
	sparkLen    = 60               // rate samples kept per server for the sparkline
	histBuckets = 60               // buckets of sticky history per server
	histBucket  = 15 * time.Second // width of one history bucket (60 × 15 s = 15 min)
)

// sampler turns cumulative counters from successive snapshots into rates,
// sparklines and the last 15 minutes of sticky history. It is safe for
// concurrent use: the hub samples, page handlers read.
type sampler struct {
	mu        sync.RWMutex
	last      time.Time
	servers   map[string]*serverLive // "backend/server"
	backends  map[string]*backendLive
	frontends map[string]*rateLive
}

// backendLive is what the sampler keeps per backend: its request rate and
// its session rate with the highest value seen.
type backendLive struct {
	req, sess rateLive
	sessMax   float64
	// old is the rate of requests with an old-key or old-address cookie;
	// oldSpark keeps it, reSpark the count of cookies re-issued, one
	// value a sample (the dynamic-cookie migration chart).
	old               rateLive
	oldSpark, reSpark series
}

// series is a ring of the last sparkLen samples of a value.
type series struct {
	vals   [sparkLen]float64
	n, pos int
}

func (s *series) push(v float64) {
	s.vals[s.pos] = v
	s.pos = (s.pos + 1) % sparkLen
	s.n = min(s.n+1, sparkLen)
}

// values returns the samples, oldest first.
func (s *series) values() []float64 {
	out := make([]float64, 0, s.n)
	for i := s.n; i > 0; i-- {
		out = append(out, s.vals[(s.pos-i+sparkLen)%sparkLen])
	}
	return out
}

// rateLive is one cumulative counter turned into a rate.
type rateLive struct {
	prev int64
	rate float64
}

// serverLive is what the sampler keeps per server.
type serverLive struct {
	tot, pin, nw rateLive
	// totMax is the highest session rate seen since the counters were
	// last cleared (HAProxy's rate_max).
	totMax   float64
	spark    [sparkLen]float64
	sparkN   int // samples recorded, at most sparkLen
	sparkPos int // next slot
	histPin  [histBuckets]int64
	histNew  [histBuckets]int64
	bucket   int64 // bucket number (Unix time / histBucket) of the newest bucket
}

// serverSample is a copy of a server's live figures, oldest values first.
type serverSample struct {
	Rate, PinRate, NewRate float64
	// RateMax is the highest session rate seen.
	RateMax          float64
	Spark            []float64
	HistPin, HistNew []int64
	// Clients is the number of new persistent sessions in the last 15
	// minutes.
	Clients int64
}

func newSampler() *sampler {
	return &sampler{
		servers:   make(map[string]*serverLive),
		backends:  make(map[string]*backendLive),
		frontends: make(map[string]*rateLive),
	}
}

// update advances r to the cumulative value v over dt seconds (dt <= 0 on
// the first sample only records v). A counter that went down was cleared.
func (r *rateLive) update(v int64, dt float64, first bool) int64 {
	d := v - r.prev
	if d < 0 || first {
		d = 0
	}
	r.prev = v
	if dt > 0 {
		r.rate = float64(d) / dt
	}
	return d
}

// sample records a snapshot taken at now.
func (s *sampler) sample(snap *balancer.Snapshot, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dt := 0.0
	if !s.last.IsZero() {
		dt = now.Sub(s.last).Seconds()
	}
	s.last = now
	bucket := now.UnixNano() / int64(histBucket)
	seenS := make(map[string]bool)
	seenB := make(map[string]bool)
	for i := range snap.Backends {
		b := &snap.Backends[i]
		name := b.Config.Name
		seenB[name] = true
		bl, ok := s.backends[name]
		if !ok {
			bl = &backendLive{}
			s.backends[name] = bl
		}
		bl.req.update(b.Stats.TotalRequests, dt, !ok)
		bl.sess.update(b.Stats.TotalSessions, dt, !ok)
		bl.sessMax = max(bl.sessMax, bl.sess.rate)
		bl.old.update(b.Stats.Sticky.OldKey+b.Stats.Sticky.OldAddr, dt, !ok)
		if dt > 0 {
			bl.oldSpark.push(bl.old.rate)
			bl.reSpark.push(float64(b.Stats.Sticky.Reissued))
		}
		for j := range b.Servers {
			sv := &b.Servers[j]
			key := name + "/" + sv.Config.Name
			seenS[key] = true
			sl, ok := s.servers[key]
			if !ok {
				sl = &serverLive{bucket: bucket}
				s.servers[key] = sl
			}
			sl.tot.update(sv.Stats.TotalSessions, dt, !ok)
			sl.totMax = max(sl.totMax, sl.tot.rate)
			dp := sl.pin.update(sv.Stats.Sticky.Pinned, dt, !ok)
			dn := sl.nw.update(sv.Stats.Sticky.NewSessions, dt, !ok)
			if dt > 0 {
				sl.spark[sl.sparkPos] = sl.tot.rate
				sl.sparkPos = (sl.sparkPos + 1) % sparkLen
				sl.sparkN = min(sl.sparkN+1, sparkLen)
			}
			sl.advance(bucket)
			sl.histPin[bucket%histBuckets] += dp
			sl.histNew[bucket%histBuckets] += dn
		}
	}
	for k := range s.servers {
		if !seenS[k] {
			delete(s.servers, k)
		}
	}
	for k := range s.backends {
		if !seenB[k] {
			delete(s.backends, k)
		}
	}
	seenF := make(map[string]bool)
	for i := range snap.Frontends {
		f := &snap.Frontends[i]
		seenF[f.Config.Name] = true
		fl, ok := s.frontends[f.Config.Name]
		if !ok {
			fl = &rateLive{}
			s.frontends[f.Config.Name] = fl
		}
		fl.update(f.Stats.TotalRequests, dt, !ok)
	}
	for k := range s.frontends {
		if !seenF[k] {
			delete(s.frontends, k)
		}
	}
}

// advance moves the history to bucket, clearing the buckets skipped.
func (sl *serverLive) advance(bucket int64) {
	if bucket <= sl.bucket {
		return
	}
	for b := sl.bucket + 1; b <= bucket && b <= sl.bucket+histBuckets; b++ {
		sl.histPin[b%histBuckets] = 0
		sl.histNew[b%histBuckets] = 0
	}
	sl.bucket = bucket
}

// server returns a copy of a server's figures; ok is false before its
// first sample.
func (s *sampler) server(backend, server string) (serverSample, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sl, ok := s.servers[backend+"/"+server]
	if !ok {
		return serverSample{}, false
	}
	out := serverSample{Rate: sl.tot.rate, RateMax: sl.totMax, PinRate: sl.pin.rate, NewRate: sl.nw.rate}
	out.Spark = make([]float64, 0, sl.sparkN)
	for i := sl.sparkN; i > 0; i-- {
		out.Spark = append(out.Spark, sl.spark[(sl.sparkPos-i+sparkLen)%sparkLen])
	}
	out.HistPin = make([]int64, histBuckets)
	out.HistNew = make([]int64, histBuckets)
	for i := 0; i < histBuckets; i++ {
		b := (sl.bucket - int64(histBuckets-1) + int64(i)) % histBuckets
		if b < 0 {
			b += histBuckets
		}
		out.HistPin[i] = sl.histPin[b]
		out.HistNew[i] = sl.histNew[b]
		out.Clients += sl.histNew[b]
	}
	return out, true
}

func (s *sampler) backendRate(name string) float64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if b, ok := s.backends[name]; ok {
		return b.req.rate
	}
	return 0
}

// migration returns a backend's recent rates of requests with an old
// cookie and counts of cookies re-issued, oldest first.
func (s *sampler) migration(name string) (old, reissued []float64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if b, ok := s.backends[name]; ok {
		return b.oldSpark.values(), b.reSpark.values()
	}
	return nil, nil
}

// backendSessionRate returns a backend's session rate and the highest
// value it had.
func (s *sampler) backendSessionRate(name string) (cur, peak float64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if b, ok := s.backends[name]; ok {
		return b.sess.rate, b.sessMax
	}
	return 0, 0
}

// clearMax forgets the highest session rates of a backend's servers and
// of the backend ("" for every backend), as clear counters does with
// HAProxy's rate_max.
func (s *sampler) clearMax(backend string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, b := range s.backends {
		if backend == "" || name == backend {
			b.sessMax = 0
		}
	}
	for key, sl := range s.servers {
		if backend == "" || strings.HasPrefix(key, backend+"/") {
			sl.totMax = 0
		}
	}
}

func (s *sampler) frontendRate(name string) float64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if f, ok := s.frontends[name]; ok {
		return f.rate
	}
	return 0
}

// sparkPath draws values as a line on a 60 × 16 canvas, newest at the right.
func sparkPath(vals []float64) string {
	if len(vals) == 0 {
		return "M0,16L60,16"
	}
	peak := 1.0
	for _, v := range vals {
		peak = max(peak, v)
	}
	var b strings.Builder
	x0 := sparkLen - len(vals)
	for i, v := range vals {
		if i == 0 {
			b.WriteByte('M')
		} else {
			b.WriteByte('L')
		}
		b.WriteString(strconv.Itoa(x0 + i))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(15.5-v/peak*15, 'f', 1, 64))
	}
	return b.String()
}

// histPaths draws pinned requests as bars and new sessions as a line on a
// 100 × 20 canvas, both scaled to the same peak.
func histPaths(pin, nw []int64) (pinPath, newPath string, peak int64) {
	for i := range pin {
		peak = max(peak, pin[i], nw[i])
	}
	scale := max(peak, 1) // an idle server draws flat lines
	w := 100.0 / float64(len(pin))
	var pb, nb strings.Builder
	for i := range pin {
		x := float64(i) * w
		if pin[i] > 0 {
			h := float64(pin[i]) / float64(scale) * 19
			pb.WriteString("M" + fmtF(x) + ",20v-" + fmtF(h) + "h" + fmtF(w*0.8) + "v" + fmtF(h) + "Z")
		}
		if i == 0 {
			nb.WriteByte('M')
		} else {
			nb.WriteByte('L')
		}
		nb.WriteString(fmtF(x+w/2) + "," + fmtF(19.5-float64(nw[i])/float64(scale)*19))
	}
	return pb.String(), nb.String(), peak
}

func fmtF(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
