package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"tether/store"

	"tether/balancer/e2etest"
)

func TestUserCommandRecoversTheAdmin(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "tether.db")
	// A first start creates "admin" with a random password, printed once.
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	var out e2etest.Buffer
	sock := filepath.Join(dir, "t.sock")
	go func() {
		done <- run(serveCtx, []string{"serve", "-db", db, "-console", "127.0.0.1:0", "-socket", sock}, noEnv, nil, &out, io.Discard)
	}()
	waitFor(t, "the first admin", func() bool { return strings.Contains(out.String(), "Admin user \"admin\" created") })
	defer func() { stop(); <-done }()

	// Beside the running process, the password is lost and reset.
	var res bytes.Buffer
	if err := run(ctx, []string{"user", "-db", db, "passwd", "admin"}, noEnv, strings.NewReader("a new passphrase 42\n"), &res, &res); err != nil {
		t.Fatalf("user passwd: %v\n%s", err, res.String())
	}
	res.Reset()
	if err := run(ctx, []string{"user", "-db", db, "add", "ops", "operator"}, noEnv, strings.NewReader("another passphrase 7\n"), &res, &res); err != nil {
		t.Fatalf("user add: %v\n%s", err, res.String())
	}
	res.Reset()
	if err := run(ctx, []string{"user", "-db", db, "list"}, noEnv, nil, &res, &res); err != nil || !regexp.MustCompile(`(?m)^ops +operator +\d{4}-`).MatchString(res.String()) {
		t.Errorf("user list: %v\n%s", err, res.String())
	}
	st, err := store.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The running console accepts the new password.
	console := regexp.MustCompile(`Tether console: (http://\S+)/`).FindStringSubmatch(out.String())
	if console == nil {
		t.Fatalf("no console address in:\n%s", out.String())
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login, err := c.PostForm(console[1]+"/login", url.Values{"name": {"admin"}, "password": {"a new passphrase 42"}})
	if err != nil {
		t.Fatal(err)
	}
	login.Body.Close()
	if login.StatusCode != http.StatusSeeOther || len(login.Cookies()) == 0 {
		t.Errorf("console sign-in with the new password: status %d", login.StatusCode)
	}
	// The last admin cannot be removed or demoted, even from the command line.
	if err := run(ctx, []string{"user", "-db", db, "role", "admin", "viewer"}, noEnv, nil, io.Discard, io.Discard); err == nil {
		t.Errorf("demoting the only admin succeeded")
	}
	audit, err := st.ListAudit(ctx, store.AuditFilter{Channel: "cli"})
	if err != nil || len(audit) != 2 || !strings.Contains(audit[0].Command+audit[1].Command, "user passwd admin") {
		t.Errorf("audit of user commands: %v %+v", err, audit)
	}
	for _, e := range audit {
		if strings.Contains(e.Command, "passphrase") || strings.Contains(e.Result, "passphrase") {
			t.Errorf("a password reached the audit log: %+v", e)
		}
	}
}

func TestAdminPasswordEnvIgnoredIsSaid(t *testing.T) {
	f := newFixture(t, 1)
	ctx, stop := context.WithCancel(context.Background())
	env := func(k string) string {
		if k == "TETHER_ADMIN_PASSWORD" {
			return "first admin password"
		}
		return ""
	}
	start := func() string {
		var out e2etest.Buffer
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"serve", "-f", f.cfg, "-db", f.db, "-console", "127.0.0.1:0"}, env, nil, &out, io.Discard)
		}()
		waitFor(t, "the console to start", func() bool { return strings.Contains(out.String(), "Tether console:") })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	defer stop()
	if out := start(); !strings.Contains(out, "created with password: (from TETHER_ADMIN_PASSWORD)") {
		t.Errorf("first start:\n%s", out)
	}
	if out := start(); !strings.Contains(out, "TETHER_ADMIN_PASSWORD ignored") {
		t.Errorf("second start does not say the variable was ignored:\n%s", out)
	}
}
