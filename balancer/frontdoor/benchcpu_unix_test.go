//go:build unix

package frontdoor

import (
	"syscall"
	"testing"
)

// reportCPU starts counting the process's CPU time; the function it
// returns reports user and system nanoseconds per iteration.
func reportCPU(b *testing.B) func() {
	var start syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &start)
	return func() {
		var end syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &end)
		n := float64(b.N)
		b.ReportMetric(float64(end.Utime.Nano()-start.Utime.Nano())/n, "user-ns/op")
		b.ReportMetric(float64(end.Stime.Nano()-start.Stime.Nano())/n, "sys-ns/op")
	}
}
