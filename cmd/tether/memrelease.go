package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Memory release when quiet. A proxy collects garbage rarely (GOGC 400),
// so after a burst of requests the heap holds their garbage, and the
// runtime returns freed pages to the system only slowly: thousands of
// clients that made one request each and then sit idle would keep the
// memory of their requests. Once the process goes quiet, one collection
// gives that memory back.
const (
	// memoryCheckEvery is how often the heap is looked at.
	memoryCheckEvery = time.Second
	// quietAllocation is the most a quiet process allocates between two
	// checks.
	quietAllocation = 1 << 20
	// releaseAfter is how much must have been allocated since the last
	// release for another to be worth it: garbage only comes from
	// allocations.
	releaseAfter = 4 << 20
	// residentSlack is how much the resident heap may exceed the live
	// one by (besides a quarter of the live heap) before it is worth a
	// collection.
	residentSlack = 1 << 20
)

// heapFigures are the runtime's heap figures a release decision needs.
type heapFigures struct {
	// allocated is the total ever allocated on the heap.
	allocated uint64
	// live is the live heap as of the last collection.
	live uint64
	// resident is the heap memory held: objects (dead ones included until
	// swept), unused parts of spans and free pages not yet returned.
	resident uint64
}

// worthReleasing reports whether the heap should be collected and its
// free memory returned, given the figures now, the total allocated at the
// previous check and at the last release.
func worthReleasing(now heapFigures, allocatedBefore, allocatedAtRelease uint64) bool {
	quiet := now.allocated-allocatedBefore < quietAllocation
	grown := now.allocated-allocatedAtRelease >= releaseAfter
	return quiet && grown && now.resident > now.live+now.live/4+residentSlack
}

// heapSamples returns the runtime metrics readHeap reads, in its order.
func heapSamples() []metrics.Sample {
	return []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
}

// readHeap reads the heap figures into samples (from heapSamples).
func readHeap(samples []metrics.Sample) heapFigures {
	metrics.Read(samples)
	var f heapFigures
	f.allocated = samples[0].Value.Uint64()
	f.live = samples[1].Value.Uint64()
	for _, s := range samples[2:] {
		f.resident += s.Value.Uint64()
	}
	return f
}

// releaseMemoryWhenQuiet collects the heap and returns its free memory to
// the system whenever the process has gone quiet with a heap much larger
// than what is live, until ctx is done. It starts by collecting what
// start-up left: the migration parser's sync.Pool alone keeps 4 MB
// buffers, which a pool gives up only at the second collection, and a
// heap that starts large lets garbage grow large before the next one.
func releaseMemoryWhenQuiet(ctx context.Context) error {
	runtime.GC()
	debug.FreeOSMemory() // the second collection
	samples := heapSamples()
	before := readHeap(samples).allocated
	released := before
	t := time.NewTicker(memoryCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		now := readHeap(samples)
		if worthReleasing(now, before, released) {
			debug.FreeOSMemory()
			now = readHeap(samples)
			released = now.allocated
		}
		before = now.allocated
	}
}
