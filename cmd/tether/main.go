// Command tether is an HTTP load balancer with HAProxy-compatible cookie
// persistence, a Runtime API that speaks HAProxy's stats-socket protocol, a
// live browser console, and SQLite (or, for a fleet of nodes, PostgreSQL)
// storage for everything an operator does.
//
// Usage:
//
//	tether [serve] [-f haproxy.cfg] [-db tether.db] [-console 127.0.0.1:9090]
//	tether ctl [-s SOCKET|ADDR] ['CMD; CMD']
//	tether reload [-s SOCKET|ADDR]
//	tether import -f FILE [-n] [-strict] [-replace] [-db tether.db]
//	tether export [-db tether.db]
//	tether user [-db tether.db] list|add|passwd|role|del ...
//	tether cookie -key KEY ADDR:PORT
//	tether migrate-store [-from tether.db] -to postgres://...
//	tether nodes -db postgres://...
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var exit exitError
		if errors.As(err, &exit) {
			os.Exit(int(exit))
		}
		fmt.Fprintln(os.Stderr, "tether:", err)
		os.Exit(1)
	}
}

// exitError ends the program with a status and no message: the message was
// printed already.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// run dispatches to a subcommand; with none, or with flags only, it serves.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, getenv, stdout, stderr)
	case "ctl":
		return runCtl(ctx, args, stdin, stdout, stderr)
	case "reload":
		// The same as "ctl reload": the running process re-reads its file.
		return runCtl(ctx, append(args, "reload"), stdin, stdout, stderr)
	case "import":
		return runImport(ctx, args, getenv, stdout, stderr)
	case "user":
		return runUser(ctx, args, getenv, stdin, stdout, stderr)
	case "export":
		return runExport(ctx, args, getenv, stdout, stderr)
	case "cookie":
		return runCookie(args, stdout, stderr)
	case "migrate-store":
		return runMigrateStore(ctx, args, getenv, stdout, stderr)
	case "nodes":
		return runNodes(ctx, args, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

const usage = `Usage:
  tether [serve] [-f haproxy.cfg] [-db tether.db] [-console 127.0.0.1:9090] [-demo-traffic]
      Run the balancer, its Runtime API sockets and the console.
      With -db postgres://..., run as one node of a fleet sharing the
      database; -node NAME, -stats-socket PATH and -bind FRONTEND=ADDR set
      what differs between the nodes.
  tether ctl [-s SOCKET|ADDR] ['CMD; CMD']
      Send Runtime API commands (interactive prompt without a command).
  tether reload [-s SOCKET|ADDR]
      Make the running process re-read its -f file and apply what changed
      (as kill -USR2 or kill -HUP does); prints what changed or why not.
  tether import -f FILE [-n] [-strict] [-replace] [-db tether.db]
      Show what an HAProxy config file would change, and apply it (refused
      while a running Tether holds the database).
  tether export [-db tether.db]
      Print the current state as an HAProxy config.
  tether user [-db tether.db] list|add|passwd|role|del ...
      Manage console users in the database (works beside a running Tether).
  tether cookie -key KEY ADDR:PORT
      Print the dynamic cookie HAProxy and Tether give a server.
  tether migrate-store [-from tether.db] -to postgres://...
      Copy a single node's database into an empty PostgreSQL database,
      for a fleet (refused while a running Tether holds the file).
  tether nodes -db postgres://...
      List the fleet's nodes: up, behind (journal not yet applied) or lost
      (no heartbeat for 6 s), with their uptime, version and console.
`
