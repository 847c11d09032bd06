package runtimeapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"time"
)

// Client sends commands to a Runtime API socket: Tether's or HAProxy's.
// Each Exec uses its own connection in non-interactive mode, so a Client
// is safe for concurrent use.
type Client struct {
	network string
	address string
	// Timeout bounds one Exec when its context has no deadline.
	Timeout time.Duration
}

// Dial checks that addr (a UNIX socket path, "unix@PATH", "ipv4@HOST:PORT"
// or "ipv6@[HOST]:PORT") accepts connections and returns a client for it.
func Dial(ctx context.Context, addr string) (*Client, error) {
	network, address, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	c := &Client{network: network, address: address, Timeout: 30 * time.Second}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	_ = conn.Close()
	return c, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.network, c.address)
	if err != nil {
		return nil, fmt.Errorf("connect to runtime API at %s: %w", c.address, err)
	}
	return conn, nil
}

// Exec sends cmds (one or more commands separated by ';' or newlines) and
// returns the whole reply, read until the server closes the connection.
// The error reports transport failures only; the reply text says whether
// a command failed (see SplitSeverity).
func (c *Client) Exec(ctx context.Context, cmds string) (string, error) {
	if c.Timeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.Timeout)
			defer cancel()
		}
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if !strings.HasSuffix(cmds, "\n") {
		cmds += "\n"
	}
	if _, err := io.WriteString(conn, cmds); err != nil {
		return "", fmt.Errorf("send command to runtime API: %w", err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		if ctx.Err() != nil {
			return string(out), fmt.Errorf("read runtime API reply: %w", ctx.Err())
		}
		return string(out), fmt.Errorf("read runtime API reply: %w", err)
	}
	return string(out), nil
}

var severityPrefix = regexp.MustCompile(`(?m)^\[([0-7])\]: `)

// SplitSeverity removes the "[N]: " prefixes that "set severity-output
// number" adds to messages, and reports whether any message had an error
// severity (0 to 3).
func SplitSeverity(reply string) (text string, failed bool) {
	for _, m := range severityPrefix.FindAllStringSubmatch(reply, -1) {
		if m[1][0] <= '3' {
			failed = true
		}
	}
	return severityPrefix.ReplaceAllString(reply, ""), failed
}
