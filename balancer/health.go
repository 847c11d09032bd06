package balancer

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// checkSupervisor runs one health-check goroutine per checked server and
// starts or stops them as the table changes.
type checkSupervisor struct {
	b *Balancer

	mu       sync.Mutex
	ctx      context.Context // nil until run
	checkers map[*serverLive]context.CancelFunc
	wg       sync.WaitGroup
}

func newCheckSupervisor(b *Balancer) *checkSupervisor {
	return &checkSupervisor{b: b, checkers: make(map[*serverLive]context.CancelFunc)}
}

// run starts checks for the current table and blocks until ctx is done and
// every checker has stopped.
func (cs *checkSupervisor) run(ctx context.Context) {
	cs.mu.Lock()
	cs.ctx = ctx
	cs.mu.Unlock()
	cs.reconcile(cs.b.tab.Load())
	<-ctx.Done()
	cs.mu.Lock()
	for l, cancel := range cs.checkers {
		cancel()
		delete(cs.checkers, l)
	}
	cs.ctx = nil
	cs.mu.Unlock()
	cs.wg.Wait()
}

// reconcile starts checkers for servers that need one and stops the others.
func (cs *checkSupervisor) reconcile(t *table) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.ctx == nil {
		return
	}
	want := make(map[*serverLive]bool)
	for _, be := range t.backends {
		for _, s := range be.servers.All() {
			if s.checkEnabled && s.admin&(AdminFMaint|AdminRMaint) == 0 && s.addr.IsValid() {
				want[s.live] = true
				if _, running := cs.checkers[s.live]; !running {
					ctx, cancel := context.WithCancel(cs.ctx)
					cs.checkers[s.live] = cancel
					cs.wg.Add(1)
					go func(ref ServerRef, l *serverLive) {
						defer cs.wg.Done()
						cs.b.checkLoop(ctx, ref, l)
					}(ServerRef{Backend: be.cfg.Name, Server: s.cfg.Name}, s.live)
				}
			}
		}
	}
	for l, cancel := range cs.checkers {
		if !want[l] {
			cancel()
			delete(cs.checkers, l)
		}
	}
}

// checkLoop checks one server until ctx is done, HAProxy style: health
// counts from 0 to rise+fall-1; a server is up from rise on.
func (b *Balancer) checkLoop(ctx context.Context, ref ServerRef, l *serverLive) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("health check crashed", "server", ref.String(), "panic", fmt.Sprint(r))
		}
	}()
	s := findServer(b.tab.Load(), ref)
	if s == nil || s.live != l {
		return
	}
	health := s.cfg.Rise
	if s.op == OpStopped {
		health = 0
	}
	if cr := l.check.Load(); cr != nil {
		health = cr.Health
	}
	first := true
	for {
		s = findServer(b.tab.Load(), ref)
		if s == nil || s.live != l {
			return
		}
		wait := s.cfg.Inter
		switch {
		case first:
			// Spread the first checks over the interval, as HAProxy does.
			wait = time.Duration(int64(s.cfg.Inter) * int64(s.id%8) / 8)
			first = false
		case s.op == OpStopped && health == 0 && s.cfg.DownInter > 0:
			wait = s.cfg.DownInter
		case health > 0 && health < s.cfg.Rise+s.cfg.Fall-1 && s.cfg.FastInter > 0:
			wait = s.cfg.FastInter
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-l.checkNow:
			timer.Stop()
		case <-timer.C:
		}
		s = findServer(b.tab.Load(), ref)
		if s == nil || s.live != l || !s.checkEnabled {
			return
		}
		if cr := l.check.Load(); cr != nil {
			// "set server health" may have moved the counter.
			health = cr.Health
		}
		be := b.tab.Load().lookupBackend(ref.Backend)
		res := runCheck(ctx, be, s)
		if ctx.Err() != nil {
			return
		}
		rise, fall := s.cfg.Rise, s.cfg.Fall
		ok := res.ok
		op := s.op
		if ok {
			if health < rise+fall-1 {
				health++
			}
			if op == OpStopped && health >= rise {
				health = rise + fall - 1
				op = OpRunning
			}
		} else {
			if health >= rise {
				// chkfail counts failures while up, as HAProxy's.
				l.checksFailed.Add(1)
			}
			if health > rise {
				health--
			} else {
				health = 0
				op = OpStopped
			}
		}
		res.result.Health = health
		res.result.Time = b.now()
		l.check.Store(&res.result)
		if op != s.op {
			b.setOp(ref, l, op, res.result)
		}
	}
}

// setOp publishes a health transition.
func (b *Balancer) setOp(ref ServerRef, l *serverLive, op OpState, cr CheckResult) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.tab.Load()
	old := findServer(cur, ref)
	if old == nil || old.live != l || old.op == op {
		return
	}
	now := b.now()
	be := cur.lookupBackend(ref.Backend).clone()
	s := *old
	s.op = op
	s.lastChange = now
	l.noteOp(op, now)
	be.replace(old, &s)
	be.finish()
	if (be.usableCount == 0) != (cur.lookupBackend(ref.Backend).usableCount == 0) {
		be.live.lastChange.Store(now.UnixNano())
		if be.usableCount == 0 {
			be.live.downs.Add(1)
		}
	}
	next := cur.withBackend(be)
	next.version = cur.version + 1
	b.tab.Store(next)
	be.publishRR()
	state := "UP"
	if op == OpStopped {
		state = "DOWN"
	}
	msg := fmt.Sprintf("Server %s is %s, reason: %s", ref, state, cr.Description)
	if cr.Code != 0 {
		msg += fmt.Sprintf(", code: %d", cr.Code)
	}
	msg += fmt.Sprintf(", check duration: %dms. %d active and %d backup servers online.", cr.Duration.Milliseconds(), be.usableCount, countBackups(be))
	if op == OpStopped {
		b.log.Warn(msg, "component", "health")
	} else {
		b.log.Info(msg, "component", "health")
	}
	evs := []Event{{Kind: EventHealth, Origin: Origin{Channel: "health"}, Backend: ref.Backend, Server: ref.Server, Message: msg}}
	b.stamp(evs, now, next.version)
	b.publish(evs)
}

func countBackups(be *backendRT) int {
	n := 0
	for _, s := range be.servers.All() {
		if s.cfg.Backup && s.usable() {
			n++
		}
	}
	return n
}

type checkOutcome struct {
	ok     bool
	result CheckResult
}

// runCheck performs one TCP or HTTP check of s.
func runCheck(ctx context.Context, be *backendRT, s *serverRT) checkOutcome {
	port := s.port
	if s.cfg.CheckPort > 0 {
		port = s.cfg.CheckPort
	}
	addr := netip.AddrPortFrom(s.addr, uint16(port)).String()
	timeout := be.cfg.TimeoutCheck
	if timeout <= 0 {
		timeout = s.cfg.Inter
	}
	connectTimeout := timeout
	if tc := be.cfg.TimeoutConnect; tc > 0 && tc < connectTimeout {
		connectTimeout = tc
	}
	start := time.Now()
	d := net.Dialer{Timeout: connectTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		out := checkOutcome{result: CheckResult{Status: "L4CON", Duration: time.Since(start), Description: "Layer4 connection problem"}}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			out.result.Status, out.result.Description = "L4TOUT", "Layer4 timeout"
		}
		return out
	}
	defer conn.Close()
	if u := s.checkTLS(); u != nil {
		tc := tls.Client(conn, u.config(""))
		tc.SetDeadline(start.Add(connectTimeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			out := checkOutcome{result: CheckResult{Status: "L6RSP", Duration: time.Since(start), Description: "Layer6 invalid response"}}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				out.result.Status, out.result.Description = "L6TOUT", "Layer6 timeout"
			}
			return out
		}
		tc.SetDeadline(time.Time{})
		conn = tc
	}
	if be.cfg.HTTPCheck == nil {
		return checkOutcome{ok: true, result: CheckResult{Status: "L4OK", Duration: time.Since(start), Description: "Layer4 check passed"}}
	}
	hc := be.cfg.HTTPCheck
	method, uri, version := hc.Method, hc.URI, hc.Version
	if method == "" {
		method = "OPTIONS"
	}
	if uri == "" {
		uri = "/"
	}
	if version == "" {
		version = "HTTP/1.0"
	}
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(conn, "%s %s %s\r\nConnection: close\r\n\r\n", method, uri, version); err != nil {
		return checkOutcome{result: CheckResult{Status: "L7RSP", Duration: time.Since(start), Description: "Layer7 invalid response"}}
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	dur := time.Since(start)
	if err != nil && line == "" {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return checkOutcome{result: CheckResult{Status: "L7TOUT", Duration: dur, Description: "Layer7 timeout"}}
		}
		return checkOutcome{result: CheckResult{Status: "L7RSP", Duration: dur, Description: "Layer7 invalid response"}}
	}
	fields := strings.Fields(line)
	if len(fields) < 2 || !strings.HasPrefix(fields[0], "HTTP/") {
		return checkOutcome{result: CheckResult{Status: "L7RSP", Duration: dur, Description: "Layer7 invalid response"}}
	}
	code, err := strconv.Atoi(fields[1])
	if err != nil {
		return checkOutcome{result: CheckResult{Status: "L7RSP", Duration: dur, Description: "Layer7 invalid response"}}
	}
	ok := code >= 200 && code < 400
	if hc.ExpectStatus != 0 {
		ok = code == hc.ExpectStatus
	}
	if ok {
		return checkOutcome{ok: true, result: CheckResult{Status: "L7OK", Code: code, Duration: dur, Description: "Layer7 check passed"}}
	}
	return checkOutcome{result: CheckResult{Status: "L7STS", Code: code, Duration: dur, Description: "Layer7 wrong status"}}
}
