package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tether/store"
)

// countingSessions counts password checks and can hold the checks of one
// user name until released.
type countingSessions struct {
	Sessions
	checks  atomic.Int64
	hold    string
	entered chan struct{}
	release chan struct{}
}

func (c *countingSessions) Authenticate(ctx context.Context, name, password string) (store.User, error) {
	c.checks.Add(1)
	if c.hold != "" && name == c.hold {
		c.entered <- struct{}{}
		<-c.release
	}
	return c.Sessions.Authenticate(ctx, name, password)
}

func countSessions(cs *countingSessions) func(*Deps) {
	return func(d *Deps) {
		cs.Sessions = d.Sessions
		d.Sessions = cs
	}
}

// testClock is time.Now moved forward by what the test advanced it.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// loginFrom posts a sign-in straight to the console's handler as if from
// addr, and returns the status, the Retry-After header and the body.
func (e *env) loginFrom(addr, name, password string) (int, string, string) {
	form := url.Values{"name": {name}, "password": {password}}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = addr
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return rec.Code, rec.Header().Get("Retry-After"), rec.Body.String()
}

func TestLoginFloodFromOneAddressHashesAtMostTheLimit(t *testing.T) {
	cs := &countingSessions{}
	e := newEnv(t, Options{LoginHashers: 100}, countSessions(cs))
	const n = 100
	var wg sync.WaitGroup
	var unauthorized, limited, other atomic.Int64
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := http.PostForm(e.console.URL+"/login", url.Values{"name": {fmt.Sprintf("guess%d", i)}, "password": {"wrong"}})
			if err != nil {
				other.Add(1)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			switch {
			case res.StatusCode == http.StatusUnauthorized:
				unauthorized.Add(1)
			case res.StatusCode == http.StatusTooManyRequests && res.Header.Get("Retry-After") != "":
				limited.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if got := cs.checks.Load(); got > sourceLimit {
		t.Errorf("%d of %d parallel sign-ins from one address checked a password, want at most %d", got, n, sourceLimit)
	}
	if unauthorized.Load() != cs.checks.Load() || limited.Load() != n-cs.checks.Load() || other.Load() != 0 {
		t.Errorf("answers: %d 401, %d 429 with Retry-After, %d other; want one 401 per check (%d) and 429 for the rest",
			unauthorized.Load(), limited.Load(), other.Load(), cs.checks.Load())
	}
}

func TestLoginRefusedWhenHashersBusy(t *testing.T) {
	cs := &countingSessions{hold: "olga", entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, Options{LoginHashers: 1}, countSessions(cs))
	done := make(chan int)
	go func() {
		code, _, _ := e.loginFrom("192.0.2.1:1000", "olga", testPassword("olga"))
		done <- code
	}()
	<-cs.entered
	code, retry, body := e.loginFrom("192.0.2.2:1000", "alice", testPassword("alice"))
	if code != http.StatusTooManyRequests || retry != "1" || !strings.Contains(body, "busy checking other sign-ins") {
		t.Errorf("sign-in while the only hasher is busy: %d, Retry-After %q; want 429, Retry-After 1 and the reason", code, retry)
	}
	close(cs.release)
	if code := <-done; code != http.StatusSeeOther {
		t.Errorf("held sign-in: status %d, want 303", code)
	}
	if code, _, _ := e.loginFrom("192.0.2.2:1000", "alice", testPassword("alice")); code != http.StatusSeeOther {
		t.Errorf("sign-in once the hasher is free: status %d, want 303", code)
	}
	if got := cs.checks.Load(); got != 2 {
		t.Errorf("%d password checks, want 2 (the refused sign-in is not checked)", got)
	}
}

func TestLoginBackoffIsPerUserAndAddress(t *testing.T) {
	clock := &testClock{}
	e := newEnv(t, Options{Now: clock.now})
	const attacker, admin = "203.0.113.5:4000", "198.51.100.7:5000"
	for i := 1; i <= backoffFree+1; i++ {
		if code, _, _ := e.loginFrom(attacker, "alice", "guess-"+strconv.Itoa(i)); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d from the attacker: status %d, want 401", i, code)
		}
	}
	code, retry, body := e.loginFrom(attacker, "alice", testPassword("alice"))
	if code != http.StatusTooManyRequests || retry == "" || !strings.Contains(body, "for this name from your address") {
		t.Fatalf("after %d failures alice from the attacker's address gets %d (Retry-After %q), want 429", backoffFree+1, code, retry)
	}
	if code, _, _ := e.loginFrom(attacker, "olga", testPassword("olga")); code != http.StatusSeeOther {
		t.Errorf("another user from the attacker's address: status %d, want 303", code)
	}
	if code, _, _ := e.loginFrom(admin, "Alice", testPassword("alice")); code != http.StatusSeeOther {
		t.Fatalf("the real alice from her own address: status %d, want 303 (no lockout by strangers)", code)
	}

	// The wait doubles with each further failure.
	clock.advance(backoffBase + time.Millisecond)
	e.loginFrom(attacker, "alice", "guess-again")
	clock.advance(backoffBase + time.Millisecond)
	if code, _, _ := e.loginFrom(attacker, "alice", "guess-again"); code != http.StatusTooManyRequests {
		t.Errorf("one base wait after the 7th failure: status %d, want 429 (the wait doubled)", code)
	}

	// An admin sees the lockout and clears it.
	c := e.login("alice")
	_, doc, _ := e.get(c, "/users")
	rows := find(doc, byAttr("data-lockout", ""))
	if len(rows) != 1 || !strings.Contains(text(rows[0]), "alice") || !strings.Contains(text(rows[0]), "203.0.113.5") {
		t.Fatalf("Users page lockouts: %d rows, want one for alice from 203.0.113.5", len(rows))
	}
	res, _ := e.post(c, "/users/lockouts/clear", url.Values{"user": {"alice"}, "source": {"203.0.113.5"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("clear lockout: status %d, want 303", res.StatusCode)
	}
	if code, _, _ := e.loginFrom(attacker, "alice", "one-more-guess"); code != http.StatusUnauthorized {
		t.Errorf("after the lockout was cleared: status %d, want 401", code)
	}
	_, doc, _ = e.get(c, "/users")
	if rows := find(doc, byAttr("data-lockout", "")); len(rows) != 0 {
		t.Errorf("%d lockouts listed after clearing, want 0", len(rows))
	}

	// Sign-ins, failures and the cleared lockout are audited, without
	// passwords.
	entries, err := e.st.ListAudit(context.Background(), store.AuditFilter{Channel: "console", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var failed, ok, cleared int
	for _, a := range entries {
		all := strings.Join([]string{a.Actor, a.Source, a.Command, a.Result, a.Detail, a.Before, a.After}, " ")
		if strings.Contains(all, "guess") || strings.Contains(all, testPassword("alice")) {
			t.Errorf("audit entry holds a password: %+v", a)
		}
		switch {
		case a.Command == "login" && a.Actor == "alice" && a.Source == "203.0.113.5" && a.Result != store.ResultOK:
			failed++
		case a.Command == "login" && a.Actor == "alice" && a.Source == "198.51.100.7" && a.Result == store.ResultOK:
			ok++
		case a.Command == "clear login lockout of alice" && a.Actor == "alice" && a.Detail == "from 203.0.113.5":
			cleared++
		}
	}
	if failed != backoffFree+2+1 || ok != 1 || cleared != 1 {
		t.Errorf("audit: %d failed sign-ins of alice from the attacker, %d successes from her address, %d cleared lockouts; want %d, 1, 1",
			failed, ok, cleared, backoffFree+3)
	}
	// Operators see the addresses on the audit page, viewers do not.
	for _, who := range []string{"olga", "victor"} {
		_, _, body := e.get(e.login(who), "/audit?channel=console")
		if shown := strings.Contains(body, "203.0.113.5"); shown != (who == "olga") {
			t.Errorf("audit page for %s shows the attacker's address: %v", who, shown)
		}
	}
}

func TestLoginSourceLimit(t *testing.T) {
	e := newEnv(t, Options{})
	const attacker = "203.0.113.9:4000"
	for i := 1; i <= sourceLimit; i++ {
		if code, _, _ := e.loginFrom(attacker, "user"+strconv.Itoa(i), "wrong-password"); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d, want 401", i, code)
		}
	}
	code, retry, body := e.loginFrom(attacker, "alice", testPassword("alice"))
	if code != http.StatusTooManyRequests || retry == "" || !strings.Contains(body, "from your address") {
		t.Fatalf("after %d failures from one address: status %d, want 429 with Retry-After", sourceLimit, code)
	}
	// The same /64 is the same source; another address is not limited.
	if code, _, _ := e.loginFrom("[2001:db8::1]:1", "x", "wrong-password"); code != http.StatusUnauthorized {
		t.Errorf("IPv6 source: status %d, want 401", code)
	}
	if code, _, _ := e.loginFrom("198.51.100.7:5000", "alice", testPassword("alice")); code != http.StatusSeeOther {
		t.Errorf("alice from another address: status %d, want 303", code)
	}
	c := e.login("alice")
	_, doc, _ := e.get(c, "/users")
	rows := find(doc, byAttr("data-lockout", ""))
	if len(rows) != 1 || !strings.Contains(text(rows[0]), "203.0.113.9") {
		t.Fatalf("lockouts: %d rows, want one for address 203.0.113.9", len(rows))
	}
	if res, _ := e.post(c, "/users/lockouts/clear", url.Values{"source": {"203.0.113.9"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("clear: status %d", res.StatusCode)
	}
	if code, _, _ := e.loginFrom(attacker, "alice", testPassword("alice")); code != http.StatusSeeOther {
		t.Errorf("after clearing the address: status %d, want 303", code)
	}
}

func TestSourceKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not-an-ip", "not-an-ip"},
	} {
		if got := sourceKey(tc.in); got != tc.want {
			t.Errorf("sourceKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBackoffLimiter(t *testing.T) {
	l := newBackoffLimiter(2, time.Second, 8*time.Second, 3)
	now := time.Unix(1000, 0)
	for _, step := range []struct {
		fail bool
		at   time.Duration
		want time.Duration
	}{
		{true, 0, 0}, {true, 0, 0}, // free failures
		{true, 0, time.Second},
		{true, time.Second, 2 * time.Second},
		{true, 3 * time.Second, 4 * time.Second},
		{true, 7 * time.Second, 8 * time.Second},
		{true, 14 * time.Second, 8 * time.Second}, // capped
		{false, 21 * time.Second, time.Second},
		{false, 22 * time.Second, 0},
	} {
		if step.fail {
			l.fail("k", now.Add(step.at))
		}
		if got := l.wait("k", now.Add(step.at)); got != step.want {
			t.Errorf("at %v: wait %v, want %v", step.at, got, step.want)
		}
	}
	for i := range 10 {
		l.fail("k"+strconv.Itoa(i), now)
	}
	if len(l.keys) > 3 {
		t.Errorf("limiter holds %d keys, want at most 3", len(l.keys))
	}
}

// floodPhase is how long the flood of BenchmarkProxyDuringLoginFlood is
// on, then off, in each iteration.
const (
	floodPhase     = 500 * time.Millisecond
	trafficClients = 32 // keep-alive connections sending proxied requests
)

// BenchmarkProxyDuringLoginFlood measures the proxy's request rate through
// the real balancer with and without a flood of sign-ins: 40 flooders each
// try a wrong password every interval (400 or 1,600 attempts/s in all), each
// attempt from its own address under its own name, so neither the per-source limit
// nor the backoff holds it back, only the hashing slots and budget. The
// flood calls the console's handler directly (the attacker's CPU is not
// this machine's). Each iteration runs floodPhase of traffic without the
// flood and floodPhase with it, so load from other processes affects both
// rates alike; run it with -benchtime 10x or more.
func BenchmarkProxyDuringLoginFlood(b *testing.B) {
	for _, tc := range []struct {
		name     string
		opts     Options
		interval time.Duration
	}{
		{"gated/attempts=400/s", Options{LoginCPUShare: 0.02}, 100 * time.Millisecond}, // the default share
		{"gated/attempts=1600/s", Options{LoginCPUShare: 0.02}, 25 * time.Millisecond},
		// Every attempt refused before hashing: what the flood's requests
		// cost by themselves.
		{"refusals-only/attempts=1600/s", Options{LoginCPUShare: 1e-9}, 25 * time.Millisecond},
		// Without the gate's bounds, as before it had them.
		{"unbounded/attempts=400/s", Options{LoginHashers: 1000, LoginCPUShare: -1}, 100 * time.Millisecond},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cs := &countingSessions{}
			e := newEnv(b, tc.opts, countSessions(cs))
			waitFor(b, 5*time.Second, "servers up", func() bool {
				return e.bal.Snapshot().Backend("servers").Server("s1").StatusText() == "UP"
			})
			stop := make(chan struct{})
			var workers sync.WaitGroup
			defer func() { close(stop); workers.Wait() }()

			var flooding atomic.Bool
			var logins, refused atomic.Int64
			for f := range 40 {
				workers.Add(1)
				go func() {
					defer workers.Done()
					tick := time.NewTicker(tc.interval)
					defer tick.Stop()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						case <-tick.C:
						}
						if !flooding.Load() {
							continue
						}
						addr := fmt.Sprintf("10.%d.%d.%d:1000", f, i/256%256, i%256)
						code, _, _ := e.loginFrom(addr, fmt.Sprintf("flood%d-%d", f, i), "wrong-password")
						logins.Add(1)
						if code == http.StatusTooManyRequests {
							refused.Add(1)
						}
					}
				}()
			}
			var served atomic.Int64
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for range trafficClients {
				workers.Add(1)
				go func() {
					defer workers.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						res, err := client.Get(e.frontend.URL + "/")
						if err != nil {
							continue
						}
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
						served.Add(1)
					}
				}()
			}
			// Spend the hashing budget's idle burst first: measure the
			// steady state.
			flooding.Store(true)
			if tc.opts.LoginCPUShare > 0 {
				waitFor(b, 30*time.Second, "hashing budget spent", func() bool {
					bu := &e.srv.gate.budget
					bu.mu.Lock()
					defer bu.mu.Unlock()
					return bu.tokens <= 0
				})
			}
			flooding.Store(false)

			var quiet, flood time.Duration
			var quietN, floodN int64
			checks0 := cs.checks.Load()
			var peak uint64
			b.ResetTimer()
			for range b.N {
				for _, on := range []bool{false, true} {
					flooding.Store(on)
					n0, t0 := served.Load(), time.Now()
					time.Sleep(floodPhase)
					n, d := served.Load()-n0, time.Since(t0)
					if on {
						floodN, flood = floodN+n, flood+d
						var ms runtime.MemStats
						runtime.ReadMemStats(&ms)
						peak = max(peak, ms.HeapInuse)
					} else {
						quietN, quiet = quietN+n, quiet+d
					}
				}
			}
			b.StopTimer()
			flooding.Store(false)
			quietRate, floodRate := float64(quietN)/quiet.Seconds(), float64(floodN)/flood.Seconds()
			b.ReportMetric(quietRate, "req/s-no-flood")
			b.ReportMetric(floodRate, "req/s-flood")
			b.ReportMetric(floodRate/quietRate*100, "%-of-no-flood")
			b.ReportMetric(float64(cs.checks.Load()-checks0)/flood.Seconds(), "hashes/s")
			b.ReportMetric(float64(peak)/(1<<20), "MB-heap-in-flood")
			if n := logins.Load(); n > 0 {
				b.ReportMetric(float64(refused.Load())/float64(n)*100, "%logins-429")
			}
		})
	}
}

func TestHashBudget(t *testing.T) {
	b := hashBudget{share: 0.1, burst: time.Second, tokens: time.Second}
	now := time.Unix(1000, 0)
	if w := b.check(now); w != 0 {
		t.Fatalf("fresh budget: wait %v, want 0", w)
	}
	b.spend(1500 * time.Millisecond) // a burst overdraws by half a second
	if w := b.check(now); w <= 4*time.Second || w > 6*time.Second {
		t.Errorf("overdrawn by 0.5s at a share of 0.1: wait %v, want about 5s", w)
	}
	if w := b.check(now.Add(5*time.Second + 10*time.Millisecond)); w != 0 {
		t.Errorf("after the refill: wait %v, want 0", w)
	}
	if w := b.check(now.Add(time.Hour)); w != 0 || b.tokens != time.Second {
		t.Errorf("after an hour: wait %v, tokens %v; want 0 and the burst (1s)", w, b.tokens)
	}
	off := hashBudget{share: -1}
	off.spend(time.Hour)
	if w := off.check(now); w != 0 {
		t.Errorf("no limit: wait %v, want 0", w)
	}
}

func TestLoginBudgetSparesKnownAddresses(t *testing.T) {
	e := newEnv(t, Options{LoginCPUShare: 0.001})
	const known, stranger = "198.51.100.7:5000", "203.0.113.1:4000"
	if code, _, _ := e.loginFrom(known, "alice", testPassword("alice")); code != http.StatusSeeOther {
		t.Fatalf("first sign-in: status %d, want 303", code)
	}
	// A flood from elsewhere spent the hashing budget.
	e.srv.gate.budget.mu.Lock()
	e.srv.gate.budget.tokens = -time.Hour
	e.srv.gate.budget.mu.Unlock()
	code, retry, body := e.loginFrom(stranger, "alice", testPassword("alice"))
	if code != http.StatusTooManyRequests || retry == "" || !strings.Contains(body, "busy checking other sign-ins") {
		t.Errorf("new address with the budget spent: status %d, Retry-After %q; want 429", code, retry)
	}
	if code, _, _ := e.loginFrom(known, "olga", testPassword("olga")); code != http.StatusSeeOther {
		t.Errorf("address with a recent sign-in, budget spent: status %d, want 303", code)
	}
}

func TestLoginRefusesHugeForm(t *testing.T) {
	cs := &countingSessions{}
	e := newEnv(t, Options{}, countSessions(cs))
	form := url.Values{"name": {"alice"}, "password": {strings.Repeat("p", 1<<20)}}
	res, err := http.Post(e.console.URL+"/login", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("1 MiB sign-in form: status %d, want 413", res.StatusCode)
	}
	if n := cs.checks.Load(); n != 0 {
		t.Errorf("%d password checks for a form that was not read, want 0", n)
	}
}

// BenchmarkAttemptLimiterNewSources counts attempts, each from a new
// source, on a limiter already full: a flood from many addresses.
func BenchmarkAttemptLimiterNewSources(b *testing.B) {
	l := newAttemptLimiter(sourceLimit, sourceWindow, limiterSize)
	now := time.Unix(1000, 0)
	for i := range limiterSize {
		l.take("fill"+strconv.Itoa(i), now)
	}
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		l.take(keys[i%len(keys)]+"/"+strconv.Itoa(i), now.Add(time.Duration(i)))
	}
}

func TestAttemptLimiterEvictsExpiredThenOldest(t *testing.T) {
	l := newAttemptLimiter(2, time.Minute, 3)
	now := time.Unix(1000, 0)
	l.take("old", now)
	l.take("a", now.Add(30*time.Second))
	l.take("b", now.Add(40*time.Second))
	l.take("b", now.Add(40*time.Second)) // b is at its limit
	// "old"'s window has ended: it goes first, the others stay.
	at := now.Add(70 * time.Second)
	l.take("c", at)
	if _, ok := l.keys["old"]; ok || l.len() != 3 || l.blocked("b", at) == 0 {
		t.Fatalf("after c: keys %v, want old forgotten and b still blocked", keysOf(l))
	}
	// Full of live keys: the oldest ("a") goes.
	l.take("d", at)
	if _, ok := l.keys["a"]; ok || l.len() != 3 || l.blocked("b", at) == 0 {
		t.Fatalf("after d: keys %v, want a forgotten and b still blocked", keysOf(l))
	}
	// A reset key leaves the order too: the next eviction takes "b".
	l.reset("c")
	l.take("e", at)
	l.take("f", at)
	if _, ok := l.keys["b"]; ok || l.len() != 3 || l.order.Len() != 3 {
		t.Fatalf("after reset c, e and f: keys %v (order %d), want d, e, f", keysOf(l), l.order.Len())
	}
}

func keysOf(l *attemptLimiter) []string {
	var out []string
	for k := range l.keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
