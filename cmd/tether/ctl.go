package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"tether/balancer/runtimeapi"
)

// errCtlCommandFailed is returned when a reply carries an error message.
var errCtlCommandFailed = errors.New("runtime API command failed")

// runCtl implements "tether ctl [-s SOCKET|ADDR] [COMMAND...]": it sends
// one command line to a Runtime API socket (Tether's or HAProxy's) and
// prints the reply, or, without a command, reads command lines from stdin
// with a prompt and an in-session history. It returns an error when a
// reply reports an error.
func runCtl(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sock := fs.String("s", defaultCtlSocket(), "Runtime API socket: a UNIX socket path, ipv4@HOST:PORT or HOST:PORT")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tether ctl [-s SOCKET|ADDR] ['COMMAND; COMMAND ...']")
		fmt.Fprintln(stderr, "Without a command, reads commands from standard input ('history' lists them).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, err := runtimeapi.Dial(ctx, ctlAddress(*sock))
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return ctlExec(ctx, client, strings.Join(fs.Args(), " "), stdout)
	}
	return ctlInteractive(ctx, client, stdin, stdout, stderr)
}

// defaultCtlSocket is $TETHER_SOCKET, or ./tether.sock.
func defaultCtlSocket() string {
	if s := os.Getenv("TETHER_SOCKET"); s != "" {
		return s
	}
	return "./tether.sock"
}

// ctlAddress accepts HOST:PORT as a shorthand for a TCP socket when no
// file of that name exists.
func ctlAddress(s string) string {
	if strings.Contains(s, "@") {
		return s
	}
	if _, err := os.Stat(s); err == nil {
		return s
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if strings.Contains(host, ":") {
			return "ipv6@" + s
		}
		return "ipv4@" + s
	}
	return s
}

// ctlExec runs one command line and prints its reply without severity
// prefixes. It asks for numbered severities to tell errors from notices.
func ctlExec(ctx context.Context, client *runtimeapi.Client, line string, stdout io.Writer) error {
	reply, err := client.Exec(ctx, "set severity-output number;"+line)
	// The first command's reply is the empty line of a silent success.
	reply = strings.TrimPrefix(reply, "\n")
	text, failed := runtimeapi.SplitSeverity(reply)
	// HAProxy and Tether list their commands at severity "info" after a
	// command they do not know; for a script that is still a failure.
	failed = failed || unknownCommand(reply)
	if _, werr := io.WriteString(stdout, text); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if failed {
		return errCtlCommandFailed
	}
	return nil
}

// unknownCommand reports whether a reply numbered by "set severity-output
// number" holds the usage screen of an unknown command.
func unknownCommand(reply string) bool {
	const msg = "[6]: Unknown command"
	return strings.HasPrefix(reply, msg) || strings.Contains(reply, "\n"+msg)
}

// ctlInteractive reads command lines until EOF, "quit" or "exit". It shows
// a prompt when stdin is a terminal, keeps a history ("history" lists it,
// "!N" runs entry N again), and reports whether any command failed.
func ctlInteractive(ctx context.Context, client *runtimeapi.Client, stdin io.Reader, stdout, stderr io.Writer) error {
	prompt := isTerminal(stdin)
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var history []string
	failures := 0
	for {
		if prompt {
			fmt.Fprint(stdout, "> ")
		}
		if !sc.Scan() {
			break
		}
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			continue
		case line == "quit" || line == "exit":
			return ctlResult(failures)
		case line == "history":
			for i, h := range history {
				fmt.Fprintf(stdout, "%5d  %s\n", i+1, h)
			}
			continue
		case strings.HasPrefix(line, "!"):
			n, err := strconv.Atoi(line[1:])
			if err != nil || n < 1 || n > len(history) {
				fmt.Fprintf(stderr, "no history entry %q\n", line[1:])
				continue
			}
			line = history[n-1]
			fmt.Fprintln(stdout, line)
		}
		history = append(history, line)
		err := ctlExec(ctx, client, line, stdout)
		switch {
		case errors.Is(err, errCtlCommandFailed):
			failures++
		case err != nil:
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read commands: %w", err)
	}
	return ctlResult(failures)
}

func ctlResult(failures int) error {
	if failures > 0 {
		return fmt.Errorf("%d command(s) failed: %w", failures, errCtlCommandFailed)
	}
	return nil
}

// isTerminal reports whether r is a character device, such as a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
