package web

import (
	"container/list"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"tether/store"
)

// Login limits. A source address may fail sourceLimit times per
// sourceWindow; a user name tried from one address may fail backoffFree
// times, then waits backoffBase, doubling with each further failure up to
// backoffMax. Each table holds at most limiterSize keys.
const (
	sourceLimit  = 20
	sourceWindow = 10 * time.Minute
	backoffFree  = 5
	backoffBase  = time.Second
	backoffMax   = 15 * time.Minute
	limiterSize  = 10000
)

// hashBurst is how much hashing time the login gate allows at once after
// an idle spell (Options.LoginCPUShare sets the long-run share). An address
// that signed in successfully within trustFor skips the budget (not the
// hashing slots), so a flood from elsewhere does not keep known operators
// out.
const (
	hashBurst = time.Second
	trustFor  = 24 * time.Hour
)

// refusal says why the login gate refused an attempt.
type refusal int

const (
	admitted refusal = iota
	refusedUser
	refusedSource
	refusedBusy
)

func (r refusal) String() string {
	switch r {
	case refusedUser:
		return "user backoff"
	case refusedSource:
		return "source limit"
	case refusedBusy:
		return "hashers busy"
	}
	return "admitted"
}

// message is what the login page says about a refusal.
func (r refusal) message(wait time.Duration) string {
	switch r {
	case refusedBusy:
		return "The console is busy checking other sign-ins; try again in a moment."
	case refusedUser:
		return "Too many failed sign-ins for this name from your address; try again in " + roundWait(wait) + "."
	}
	return "Too many failed sign-ins from your address; try again in " + roundWait(wait) + "."
}

func roundWait(d time.Duration) string {
	return max(d.Round(time.Second), time.Second).String()
}

// loginGate decides, before any password is hashed, whether a sign-in
// attempt may be checked: the attempt is counted against its source address
// first, the (user, source) pair must not be backing off, and one of a
// fixed number of hashing slots must be free. Strangers therefore cannot
// lock a user out from another address, and a flood of sign-ins costs at
// most the hashing slots' CPU and memory. It is safe for concurrent use.
type loginGate struct {
	hashers chan struct{}
	sources *attemptLimiter
	users   *backoffLimiter
	budget  hashBudget
	trusted *recentSet // sources with a successful sign-in within trustFor

	// refusals counts refused attempts since the last log line about them,
	// logged at most once per refusalLogEvery (Unix ns in loggedAt).
	refusals atomic.Int64
	loggedAt atomic.Int64
}

// refusalLogEvery is the least interval between two log lines about
// refused sign-ins: a flood must not flood the log.
const refusalLogEvery = 10 * time.Second

// refused counts a refused attempt and returns how many to log now, or 0.
func (g *loginGate) refused(now time.Time) int64 {
	g.refusals.Add(1)
	last := g.loggedAt.Load()
	if now.UnixNano()-last < int64(refusalLogEvery) || !g.loggedAt.CompareAndSwap(last, now.UnixNano()) {
		return 0
	}
	return g.refusals.Swap(0)
}

// newLoginGate lets hashers password checks run at once, using at most
// share of one CPU over time (no limit when share is not positive).
func newLoginGate(hashers int, share float64) *loginGate {
	return &loginGate{
		hashers: make(chan struct{}, max(hashers, 1)),
		sources: newAttemptLimiter(sourceLimit, sourceWindow, limiterSize),
		users:   newBackoffLimiter(backoffFree, backoffBase, backoffMax, limiterSize),
		budget:  hashBudget{share: share, burst: hashBurst, tokens: hashBurst},
		trusted: newRecentSet(trustFor, limiterSize),
	}
}

// ticket is an admitted attempt.
type ticket struct {
	source  string
	started time.Time
}

// admit reserves an attempt from source, a hashing slot and hashing time;
// it needs no user name, so a flood is refused before its form is read.
// When it returns admitted, the caller checks the user with admitUser, then
// the password, and calls done; otherwise it returns how long the client
// should wait.
func (g *loginGate) admit(source string, now time.Time) (ticket, time.Duration, refusal) {
	if wait := g.sources.take(source, now); wait > 0 {
		return ticket{}, wait, refusedSource
	}
	select {
	case g.hashers <- struct{}{}:
	default:
		g.sources.give(source)
		return ticket{}, time.Second, refusedBusy
	}
	started := time.Now()
	if wait := g.budget.check(started); wait > 0 && !g.trusted.has(source, now) {
		<-g.hashers
		g.sources.give(source)
		return ticket{}, wait, refusedBusy
	}
	return ticket{source: source, started: started}, 0, admitted
}

// admitUser checks that user is not backing off from t's source; when it
// is, it cancels t (the attempt is not counted) and returns the wait.
func (g *loginGate) admitUser(t ticket, user string, now time.Time) time.Duration {
	wait := g.users.wait(pairKey(user, t.source), now)
	if wait > 0 {
		g.cancel(t)
	}
	return wait
}

// cancel gives back what admit took, for an attempt that checked nothing.
func (g *loginGate) cancel(t ticket) {
	<-g.hashers
	g.sources.give(t.source)
}

// done frees the hashing slot taken by admit, charges the hashing time, and
// records the outcome: a success refunds the source's attempt and clears
// the pair's backoff, a failure keeps the attempt counted and extends the
// backoff.
func (g *loginGate) done(t ticket, user string, ok bool, now time.Time) {
	g.budget.spend(time.Since(t.started))
	<-g.hashers
	if ok {
		g.sources.give(t.source)
		g.users.reset(pairKey(user, t.source))
		g.trusted.add(t.source, now)
		return
	}
	g.users.fail(pairKey(user, t.source), now)
}

// hashBudget is a token bucket of hashing time: it fills at share seconds
// per second up to burst, and each password check takes the wall time it
// spent (an upper bound of its CPU time). A share of 0 or less means no
// limit. It is safe for concurrent use.
type hashBudget struct {
	mu     sync.Mutex
	share  float64
	burst  time.Duration
	tokens time.Duration
	last   time.Time
}

// check refills the bucket and returns 0 when there is time left, else how
// long until there is.
func (b *hashBudget) check(now time.Time) time.Duration {
	if b.share <= 0 {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.tokens+time.Duration(float64(now.Sub(b.last))*b.share), b.burst)
	}
	b.last = now
	if b.tokens > 0 {
		return 0
	}
	return time.Duration(float64(-b.tokens)/b.share) + time.Millisecond
}

// spend takes d from the bucket.
func (b *hashBudget) spend(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens -= d
}

// lockout is a current lockout: of a user name from a source address, or
// (User "") of a whole source address.
type lockout struct {
	User     string
	Source   string
	Failures int
	Until    time.Time
}

// lockouts returns the current lockouts, addresses first, then by user.
func (g *loginGate) lockouts(now time.Time) []lockout {
	var out []lockout
	for _, k := range g.sources.blockedKeys(now) {
		out = append(out, lockout{Source: k.key, Failures: k.n, Until: k.until})
	}
	for _, k := range g.users.blockedKeys(now) {
		user, source, _ := strings.Cut(k.key, "\x00")
		out = append(out, lockout{User: user, Source: source, Failures: k.n, Until: k.until})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if (out[i].User == "") != (out[j].User == "") {
			return out[i].User == ""
		}
		if out[i].User != out[j].User {
			return out[i].User < out[j].User
		}
		return out[i].Source < out[j].Source
	})
	return out
}

// clear lifts a lockout: of user from source, or of source when user is
// "". It reports whether there was one.
func (g *loginGate) clear(user, source string) bool {
	if user == "" {
		return g.sources.reset(source)
	}
	return g.users.reset(pairKey(user, source))
}

func pairKey(user, source string) string { return user + "\x00" + source }

// triedName is the user name an attempt is counted and audited under: the
// stored form when name is a valid user name, else name cut to 64 bytes of
// valid UTF-8.
func triedName(name string) string {
	if n, err := store.CanonicalUserName(name); err == nil {
		return n
	}
	name = strings.ToValidUTF8(name, "?")
	for len(name) > 64 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}

// sourceKey is the address attempts are counted under: the IPv4 address,
// or the /64 of an IPv6 address (one host usually holds a whole /64).
func sourceKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

// recentSet remembers keys for a while: at most size of them, forgetting
// the oldest when full. It is safe for concurrent use.
type recentSet struct {
	mu   sync.Mutex
	ttl  time.Duration
	size int
	keys map[string]time.Time // key → when it was added
}

func newRecentSet(ttl time.Duration, size int) *recentSet {
	return &recentSet{ttl: ttl, size: size, keys: make(map[string]time.Time)}
}

// add remembers key from now on.
func (r *recentSet) add(key string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.keys[key]; !ok && len(r.keys) >= r.size {
		var oldest string
		var oldestAt time.Time
		for k, at := range r.keys {
			if oldest == "" || at.Before(oldestAt) {
				oldest, oldestAt = k, at
			}
		}
		delete(r.keys, oldest)
	}
	r.keys[key] = now
}

// has reports whether key was added within the ttl.
func (r *recentSet) has(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.keys[key]
	if ok && now.Sub(at) >= r.ttl {
		delete(r.keys, key)
		return false
	}
	return ok
}

// keyState is a blocked key as the lockout list shows it.
type keyState struct {
	key   string
	n     int
	until time.Time
}

// attemptLimiter counts attempts per key in a fixed window and blocks a key
// that reached the limit until its window ends. An attempt is taken before
// it is made and given back when it succeeds, so parallel attempts cannot
// overrun the limit. It holds at most size keys; when full it forgets
// expired keys, then the oldest, in constant time: a flood from many
// addresses costs the same per attempt as one from a few. It is safe for
// concurrent use.
type attemptLimiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	size   int
	keys   map[string]*attempts
	// order holds the keys (strings) by the start of their window, oldest
	// first: keys are added with the current time, which only grows.
	order *list.List
}

type attempts struct {
	n     int
	start time.Time
	elem  *list.Element // the key in order
}

func newAttemptLimiter(limit int, window time.Duration, size int) *attemptLimiter {
	return &attemptLimiter{limit: limit, window: window, size: size, keys: make(map[string]*attempts), order: list.New()}
}

// blocked returns how long key must still wait, or 0.
func (l *attemptLimiter) blocked(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.current(key, now)
	if a == nil || a.n < l.limit {
		return 0
	}
	return a.start.Add(l.window).Sub(now)
}

// take counts an attempt for key, or returns how long key must still wait
// when it reached the limit.
func (l *attemptLimiter) take(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.current(key, now)
	if a != nil && a.n >= l.limit {
		return a.start.Add(l.window).Sub(now)
	}
	if a == nil {
		if len(l.keys) >= l.size {
			l.evict(now)
		}
		a = &attempts{start: now, elem: l.order.PushBack(key)}
		l.keys[key] = a
	}
	a.n++
	return 0
}

// give takes back an attempt counted by take.
func (l *attemptLimiter) give(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.keys[key]; a != nil && a.n > 0 {
		a.n--
	}
}

// reset forgets key and reports whether it was known.
func (l *attemptLimiter) reset(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.keys[key]
	l.forget(key)
	return ok
}

// forget drops key; l.mu is held.
func (l *attemptLimiter) forget(key string) {
	if a := l.keys[key]; a != nil {
		l.order.Remove(a.elem)
		delete(l.keys, key)
	}
}

// current returns key's attempts in the current window; l.mu is held.
func (l *attemptLimiter) current(key string, now time.Time) *attempts {
	a := l.keys[key]
	if a != nil && !now.Before(a.start.Add(l.window)) {
		l.forget(key)
		return nil
	}
	return a
}

// blockedKeys returns the keys at their limit.
func (l *attemptLimiter) blockedKeys(now time.Time) []keyState {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []keyState
	for k := range l.keys {
		if a := l.current(k, now); a != nil && a.n >= l.limit {
			out = append(out, keyState{key: k, n: a.n, until: a.start.Add(l.window)})
		}
	}
	return out
}

// evict makes room for one key: it forgets the keys whose window ended,
// then the oldest while the limiter is full; l.mu is held.
func (l *attemptLimiter) evict(now time.Time) {
	for e := l.order.Front(); e != nil; e = l.order.Front() {
		key := e.Value.(string)
		if len(l.keys) < l.size && now.Before(l.keys[key].start.Add(l.window)) {
			return
		}
		l.forget(key)
	}
}

func (l *attemptLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// backoffLimiter makes a key wait after repeated failures: the first free
// failures cost nothing, each further one doubles the wait from base up to
// most. A key is forgotten once its wait ended and most has passed since
// its last failure, or when it succeeds. It holds at most size keys; when
// full it forgets the key whose last failure is oldest. It is safe for
// concurrent use.
type backoffLimiter struct {
	mu   sync.Mutex
	free int
	base time.Duration
	most time.Duration
	size int
	keys map[string]*backoff
}

type backoff struct {
	fails int
	last  time.Time
	until time.Time
}

func newBackoffLimiter(free int, base, most time.Duration, size int) *backoffLimiter {
	return &backoffLimiter{free: free, base: base, most: most, size: size, keys: make(map[string]*backoff)}
}

// wait returns how long key must still wait, or 0.
func (l *backoffLimiter) wait(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.current(key, now)
	if b == nil || !now.Before(b.until) {
		return 0
	}
	return b.until.Sub(now)
}

// fail records a failure of key and extends its wait.
func (l *backoffLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.current(key, now)
	if b == nil {
		if len(l.keys) >= l.size {
			l.evict(now)
		}
		b = &backoff{}
		l.keys[key] = b
	}
	b.fails++
	b.last = now
	if over := b.fails - l.free; over > 0 {
		d := l.most
		if over <= 30 {
			d = min(l.base<<(over-1), l.most)
		}
		b.until = now.Add(d)
	}
}

// reset forgets key and reports whether it was waiting.
func (l *backoffLimiter) reset(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.keys[key]
	delete(l.keys, key)
	return ok && b.fails > l.free
}

// current returns key's state unless it is forgotten; l.mu is held.
func (l *backoffLimiter) current(key string, now time.Time) *backoff {
	b := l.keys[key]
	if b != nil && l.stale(b, now) {
		delete(l.keys, key)
		return nil
	}
	return b
}

func (l *backoffLimiter) stale(b *backoff, now time.Time) bool {
	return !now.Before(b.until) && now.Sub(b.last) >= l.most
}

// blockedKeys returns the keys that must wait now.
func (l *backoffLimiter) blockedKeys(now time.Time) []keyState {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []keyState
	for k, b := range l.keys {
		if now.Before(b.until) {
			out = append(out, keyState{key: k, n: b.fails, until: b.until})
		}
	}
	return out
}

// evict makes room for one key; l.mu is held.
func (l *backoffLimiter) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for k, b := range l.keys {
		if l.stale(b, now) {
			delete(l.keys, k)
			continue
		}
		if oldest == "" || b.last.Before(oldestAt) {
			oldest, oldestAt = k, b.last
		}
	}
	if len(l.keys) >= l.size && oldest != "" {
		delete(l.keys, oldest)
	}
}
