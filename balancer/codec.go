package balancer

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// CodecVersion is the version of the JSON forms EncodeChanges and
// EncodeState write. A decoder refuses newer versions rather than guess.
const CodecVersion = 1

// Scope says where a change belongs.
type Scope int

// Scopes of changes.
const (
	// Transient changes act on connections or counters and are not part of
	// the durable state (shutdown sessions, clear counters, forced health).
	Transient Scope = iota
	// Shared changes alter the configuration every node of a fleet runs.
	Shared
	// Local changes record what this node found (DNS-resolved addresses).
	Local
)

// ScopeOf returns the scope of a change.
func ScopeOf(c Change) Scope {
	switch c := c.(type) {
	case ShutdownSessions, ClearCounters, SetHealth:
		return Transient
	case SetAddr:
		if c.Resolved {
			return Local
		}
	}
	return Shared
}

// changeTypes maps the name a change is encoded under to its type.
var changeTypes = func() map[string]reflect.Type {
	m := make(map[string]reflect.Type)
	for _, c := range []Change{
		SetAdminState{}, SetWeight{}, SetAddr{}, SetHealth{}, SetCheckEnabled{}, SetCheckPort{}, SetMaxConn{},
		SetMaintWhenIdle{}, AddServer{}, DelServer{}, SetDynamicCookies{}, SetDynamicCookieKey{}, SetCookie{}, ShutdownSessions{},
		ClearCounters{}, SetDynamicCookieAddrGrace{}, CommitSSLCert{},
	} {
		t := reflect.TypeOf(c)
		m[t.Name()] = t
	}
	return m
}()

// encodedChange is one change in the JSON form: its type name and fields.
type encodedChange struct {
	Type   string          `json:"type"`
	Change json.RawMessage `json:"change"`
}

type encodedChanges struct {
	V       int             `json:"v"`
	Changes []encodedChange `json:"changes"`
}

// EncodeChanges returns the versioned JSON form of a batch of changes. It
// holds dynamic-cookie keys in clear text: it is for the journal, never for
// display.
func EncodeChanges(changes []Change) ([]byte, error) {
	out := encodedChanges{V: CodecVersion, Changes: make([]encodedChange, 0, len(changes))}
	for _, c := range changes {
		name := reflect.TypeOf(c).Name()
		if changeTypes[name] == nil {
			return nil, fmt.Errorf("encode change: unknown change type %T", c)
		}
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("encode change %s: %w", name, err)
		}
		out.Changes = append(out.Changes, encodedChange{Type: name, Change: b})
	}
	return json.Marshal(out)
}

// DecodeChanges parses what EncodeChanges wrote.
func DecodeChanges(data []byte) ([]Change, error) {
	var in encodedChanges
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("decode changes: %w", err)
	}
	if in.V < 1 || in.V > CodecVersion {
		return nil, fmt.Errorf("decode changes: codec version %d, this Tether reads 1 to %d", in.V, CodecVersion)
	}
	out := make([]Change, 0, len(in.Changes))
	for _, e := range in.Changes {
		t := changeTypes[e.Type]
		if t == nil {
			return nil, fmt.Errorf("decode changes: unknown change type %q", e.Type)
		}
		p := reflect.New(t)
		if err := json.Unmarshal(e.Change, p.Interface()); err != nil {
			return nil, fmt.Errorf("decode change %s: %w", e.Type, err)
		}
		out = append(out, p.Elem().Interface().(Change))
	}
	return out, nil
}

type encodedState struct {
	V     int   `json:"v"`
	State State `json:"state"`
}

// EncodeState returns the versioned JSON form of a durable state, keys in
// clear text: it is for the store's state documents.
func EncodeState(st State) ([]byte, error) {
	b, err := json.Marshal(encodedState{V: CodecVersion, State: st})
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return b, nil
}

// DecodeState parses what EncodeState wrote.
func DecodeState(data []byte) (State, error) {
	var in encodedState
	if err := json.Unmarshal(data, &in); err != nil {
		return State{}, fmt.Errorf("decode state: %w", err)
	}
	if in.V < 1 || in.V > CodecVersion {
		return State{}, fmt.Errorf("decode state: codec version %d, this Tether reads 1 to %d", in.V, CodecVersion)
	}
	return in.State, nil
}
