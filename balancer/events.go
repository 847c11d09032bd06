package balancer

import "time"

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	// EventChange reports an applied Change.
	EventChange EventKind = iota
	// EventHealth reports a server's operational state transition.
	EventHealth
	// EventWarning reports a condition an operator should see, such as two
	// servers generating the same dynamic cookie.
	EventWarning
)

// Event is published to subscribers after a change is applied or a server's
// health changes. Events carry no secrets: a key change carries only the
// key's fingerprint in Message.
type Event struct {
	// Seq increases by one with every event.
	Seq     uint64
	Time    time.Time
	Kind    EventKind
	Origin  Origin
	Change  Change // for EventChange; a key change has its Key blanked
	Backend string
	Server  string // "" for backend-wide events
	// Message is a human-readable description, HAProxy-style for health
	// transitions ("Server b/s is DOWN, reason: Layer4 connection problem").
	Message string
	// Version is the snapshot version once the event's effect is visible.
	Version uint64
}
