package accesslog

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAppendHTTPLog(t *testing.T) {
	start := time.Date(2026, 12, 1, 1, 20, 32, 319_000_000, time.Local)
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{
			name: "new client, cookie inserted",
			e: Entry{Client: "127.0.0.1:58536", Start: start, Frontend: "fe", Backend: "app", Server: "web1",
				TR: 0, Tw: 0, Tc: 0, Tr: 32, Ta: 32, Status: 200, Bytes: 1254, Termination: [4]byte{'-', '-', 'N', 'I'},
				ActConn: 1, FeConn: 1, Method: "GET", URI: "/", Proto: "HTTP/1.1"},
			want: `127.0.0.1:58536 [01/Dec/2026:01:20:32.319] fe app/web1 0/0/0/32/32 200 1254 - - --NI 1/1/0/0/0 0/0 "GET / HTTP/1.1"`,
		},
		{
			name: "no server",
			e: Entry{Client: "127.0.0.1:35682", Start: start, Frontend: "fe2", Backend: "none",
				TR: 0, Tw: -1, Tc: -1, Tr: -1, Ta: 0, Status: 503, Bytes: 217, Termination: [4]byte{'S', 'C', '-', '-'},
				ActConn: 1, FeConn: 1, Method: "GET", URI: "/x", Proto: "HTTP/1.1"},
			want: `127.0.0.1:35682 [01/Dec/2026:01:20:32.319] fe2 none/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 "GET /x HTTP/1.1"`,
		},
		{
			name: "IPv6 client over TLS, redispatched, queued, encoded request line",
			e: Entry{Client: "[::1]:4431", Start: start, TLS: true, Frontend: "fe", Backend: "app", Server: "web2",
				TR: 1, Tw: 2, Tc: 3, Tr: 4, Ta: 10, Status: 200, Bytes: 5, Termination: [4]byte{'-', '-', 'D', 'I'},
				ActConn: 3, FeConn: 2, BeConn: 1, SrvConn: 1, Retries: 1, Redispatched: true, SrvQueue: 4, BackendQueue: 5,
				Method: "GET", URI: "/a\"b#c\x01\xff", Proto: "HTTP/2.0"},
			want: `::1:4431 [01/Dec/2026:01:20:32.319] fe~ app/web2 1/2/3/4/10 200 5 - - --DI 3/2/1/1/+1 4/5 "GET /a#22b#23c#01#FF HTTP/2.0"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendHTTPLog(nil, &tt.e)); got != tt.want {
				t.Errorf("line\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestAppendHTTPLogTruncatesRequestLine(t *testing.T) {
	e := Entry{Method: "GET", URI: "/" + strings.Repeat("a", 2000), Proto: "HTTP/1.1"}
	line := string(AppendHTTPLog(nil, &e))
	i := strings.IndexByte(line, '"')
	if got := len(line) - i - 2; got != maxRequestLine {
		t.Errorf("request line is %d bytes, want %d: %s", got, maxRequestLine, line[i:])
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLoggerWritesQueuedLinesAndCountsDrops(t *testing.T) {
	var out lockedBuffer
	l := New(&out, 2)
	e := Entry{Frontend: "fe", Method: "GET", URI: "/", Proto: "HTTP/1.1"}
	// Nothing drains the queue yet: the third entry is dropped, and Log
	// does not block.
	for range 3 {
		l.Log(&e)
	}
	if l.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1", l.Dropped())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for l.Written() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("written %d lines, want 2", l.Written())
		}
		time.Sleep(time.Millisecond)
	}
	l.Log(&e)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || l.Written() != 3 {
		t.Fatalf("got %d lines (%d written), want 3: %q", len(lines), l.Written(), out.String())
	}
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

var errWrite = errors.New("disk full")

func TestLoggerStopsOnWriteError(t *testing.T) {
	l := New(failingWriter{}, 1)
	e := Entry{}
	l.Log(&e)
	if err := l.Run(context.Background()); err != errWrite {
		t.Fatalf("Run returned %v, want the write error", err)
	}
	l.Log(&e)
	l.Log(&e)
	if l.Dropped() != 2 {
		t.Errorf("dropped %d, want 2 (the failed line and the one that found the queue full)", l.Dropped())
	}
}
