package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// pgoWorkloads are the workloads Tether's profile for profile-guided
// optimization is taken under: the request paths a balancer spends its
// time on (plain and TLS keep-alive, with and without a cookie).
var pgoWorkloads = []string{"sticky", "first-visit", "tls"}

// writePGOProfile runs Tether alone under each of pgoWorkloads with
// -cpu-profile and writes the merged profile to out. Checked in as
// cmd/tether/default.pgo, it is what go build and go run use to inline
// and lay out the hot path; a profile older than the code still builds
// (the compiler ignores what no longer matches), it only helps less.
func writePGOProfile(ctx context.Context, o options, dir string, origins []string, tetherBin, out string, stderr io.Writer) error {
	if o.duration < time.Second {
		return fmt.Errorf("-duration %s is too short for a profile", o.duration)
	}
	var profiles []string
	for _, name := range pgoWorkloads {
		w := workloads[slices.IndexFunc(workloads, func(w workload) bool { return w.name == name })]
		s, err := newSite(w, o, dir, origins)
		if err != nil {
			return err
		}
		prof := filepath.Join(s.dir, "cpu.prof")
		p, err := startTether(ctx, s, "tether", tetherBin, "-cpu-profile", prof)
		if err != nil {
			return err
		}
		var res result
		if err = p.learnCookie(ctx); err == nil {
			res, err = runWrk(ctx, p, w, o)
		}
		// Tether writes its profile when it stops.
		stopProcess(p.cmd)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(stderr, "%s: %.0f req/s for %s\n", name, res.rps, o.duration)
		profiles = append(profiles, prof)
	}
	merge := exec.CommandContext(ctx, "go", append([]string{"tool", "pprof", "-proto"}, profiles...)...)
	merge.Stderr = stderr
	merged, err := merge.Output()
	if err != nil {
		return fmt.Errorf("merge profiles: %w", err)
	}
	return os.WriteFile(out, merged, 0o644)
}
