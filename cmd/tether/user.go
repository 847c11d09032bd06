package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"tether/store"
)

const userUsage = `usage: tether user [-db tether.db] COMMAND
  list                      list console users and their roles
  add NAME [ROLE]           create a user (role viewer, operator or admin; default viewer)
  passwd NAME               set a user's password; their sessions end
  role NAME ROLE            change a user's role; their sessions end
  del NAME                  delete a user and their sessions
The password is read from the terminal without echo, or as the first line
of standard input. It works beside a running Tether, which sees the change
on its next request.`

// runUser manages console users directly in the database: how an operator
// who lost the only admin password gets back in.
func runUser(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("user", stderr)
	db := fs.String("db", envOr(getenv, "TETHER_DB", "tether.db"), "SQLite database file")
	fs.Usage = func() { fmt.Fprintln(stderr, userUsage) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	words := fs.Args()
	if len(words) == 0 {
		fmt.Fprintln(stderr, userUsage)
		return errors.New("user: a command is required")
	}
	want := map[string]int{"list": 1, "add": -2, "passwd": 2, "role": 3, "del": 2}
	n, known := want[words[0]]
	switch {
	case !known:
		fmt.Fprintln(stderr, userUsage)
		return fmt.Errorf("user: unknown command %q", words[0])
	case n > 0 && len(words) != n, n < 0 && (len(words) < -n || len(words) > -n+1):
		fmt.Fprintln(stderr, userUsage)
		return fmt.Errorf("user %s: wrong number of arguments", words[0])
	}
	if _, err := os.Stat(*db); err != nil {
		return fmt.Errorf("user: %w", err)
	}
	st, err := store.Open(ctx, *db, nil)
	if err != nil {
		return err
	}
	defer st.Close()

	var done string
	switch words[0] {
	case "list":
		users, err := st.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tCREATED")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, u.Role, u.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	case "add":
		role := store.RoleViewer
		if len(words) == 3 {
			role = words[2]
		}
		pw, err := readNewPassword(stdin, stderr)
		if err != nil {
			return err
		}
		if _, err := st.CreateUser(ctx, words[1], pw, role); err != nil {
			return err
		}
		done = fmt.Sprintf("user add %s %s", words[1], role)
	case "passwd":
		pw, err := readNewPassword(stdin, stderr)
		if err != nil {
			return err
		}
		if err := st.SetUserPassword(ctx, words[1], pw); err != nil {
			return err
		}
		done = "user passwd " + words[1]
	case "role":
		if err := st.SetUserRole(ctx, words[1], words[2]); err != nil {
			return err
		}
		done = fmt.Sprintf("user role %s %s", words[1], words[2])
	case "del":
		if err := st.DeleteUser(ctx, words[1]); err != nil {
			return err
		}
		done = "user del " + words[1]
	}
	e := store.AuditEntry{Time: time.Now(), Actor: osUser(), Channel: "cli", Source: "tether user", Command: done, Result: store.ResultOK}
	if err := st.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("the change was made but not audited: %w", err)
	}
	fmt.Fprintln(stdout, "done:", done)
	return nil
}

// readNewPassword reads a password: twice without echo from a terminal,
// else the first line of r.
func readNewPassword(r io.Reader, prompt io.Writer) (string, error) {
	if f, ok := r.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "New password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(prompt, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ; nothing changed")
		}
		return string(a), nil
	}
	if r == nil {
		return "", errors.New("no password: give it on standard input")
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password: give it on standard input")
	}
	return pw, nil
}

// osUser names who ran a command line, for the audit log.
func osUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}
