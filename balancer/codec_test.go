package balancer

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestChangeCodecRoundTrip encodes one change of every type and decodes
// them back unchanged.
func TestChangeCodecRoundTrip(t *testing.T) {
	ref := ServerRef{Backend: "app", Server: "s1"}
	changes := []Change{
		SetAdminState{ServerRef: ref, State: Drain},
		SetWeight{ServerRef: ref, Weight: 42},
		SetAddr{ServerRef: ref, Address: "10.0.0.9", Port: 8080, PortSet: true, Resolved: true},
		SetHealth{ServerRef: ref, Health: HealthStopping},
		SetCheckEnabled{ServerRef: ref, Enabled: true},
		SetCheckPort{ServerRef: ref, Port: 9090},
		SetMaxConn{ServerRef: ref, MaxConn: 7},
		SetMaintWhenIdle{ServerRef: ref, Intent: IdleIntent{Asked: true, By: "alice", From: "/backends/app"}},
		AddServer{Backend: "app", Server: Server{Name: "s9", Address: "10.0.0.1", Port: 80, PortSet: true, Weight: 3, Check: true,
			Inter: 2 * time.Second, Rise: 2, Fall: 3, InitAddr: []string{"last", "none"}}},
		DelServer{ServerRef: ref},
		SetDynamicCookies{Backend: "app", Enabled: true},
		SetDynamicCookieKey{Backend: "app", Key: "k\x01 ;ey"},
		SetDynamicCookieAddrGrace{Backend: "app", Grace: 5 * time.Minute},
		CommitSSLCert{Cert: SSLCert{Path: "/etc/site.pem", PEM: "bundle", FileDigest: "ab", Subject: "/CN=site", SHA1: "01", NotAfter: time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)}},
		SetCookie{Backend: "app", Cookie: &CookieConfig{Name: "SRV", Mode: CookiePrefix, Domains: []string{".a.example"}, MaxIdle: time.Hour}},
		SetCookie{Backend: "app"},
		ShutdownSessions{ServerRef: ref},
		ClearCounters{Backend: "app", All: true},
	}
	changes = append(changes, SetDynamicCookieKey{Backend: "app", Key: "k\x01 ;ey", Grace: time.Hour, GraceUntil: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)},
		SetAddr{ServerRef: ref, Address: "10.0.0.8", GraceUntil: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)})
	if len(changes) != len(changeTypes)+3 { // SetCookie, SetDynamicCookieKey and SetAddr twice
		t.Fatalf("the test covers %d change types, the codec knows %d", len(changes)-3, len(changeTypes))
	}
	data, err := EncodeChanges(changes)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "k\\u0001 ;ey") || strings.Contains(string(data), " ;ey") {
		t.Errorf("the encoded changes hold the key: %s", data)
	}
	got, err := DecodeChanges(data)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range got {
		if k, ok := c.(SetDynamicCookieKey); ok {
			if err := k.Key.Resolve(func(ref string) (string, bool) { return "k\x01 ;ey", ref == Secret("k\x01 ;ey").Ref() }); err != nil {
				t.Fatal(err)
			}
			got[i] = k
		}
		if k, ok := c.(CommitSSLCert); ok {
			if err := k.Cert.PEM.Resolve(func(ref string) (string, bool) { return "bundle", ref == Secret("bundle").Ref() }); err != nil {
				t.Fatal(err)
			}
			got[i] = k
		}
	}
	if strings.Contains(string(data), "bundle") {
		t.Errorf("the encoded changes hold the certificate bundle: %s", data)
	}
	if !reflect.DeepEqual(got, changes) {
		t.Errorf("decoded %+v\nwant    %+v", got, changes)
	}
}

func TestChangeCodecRefuses(t *testing.T) {
	for _, in := range []string{
		`{"v":2,"changes":[]}`,
		`{"v":0,"changes":[]}`,
		`{"v":1,"changes":[{"type":"FormatDisk","change":{}}]}`,
		`{"v":1,"changes":[{"type":"SetWeight","change":{"Weight":"heavy"}}]}`,
		`not json`,
	} {
		if _, err := DecodeChanges([]byte(in)); err == nil {
			t.Errorf("DecodeChanges(%s) succeeded", in)
		}
	}
	if _, err := DecodeState([]byte(`{"v":99,"state":{}}`)); err == nil || !strings.Contains(err.Error(), "codec version 99") {
		t.Errorf("DecodeState of a newer version: %v", err)
	}
}

// TestSnapshotHidesKey: a snapshot, which every console page and Runtime
// API reply is built from, shows the dynamic-cookie key by its fingerprint
// only.
func TestSnapshotHidesKey(t *testing.T) {
	b, err := New(Config{Backends: []Backend{{Name: "app", DynamicCookieKey: "top-secret-key",
		Cookie: &CookieConfig{Name: "SRV", Mode: CookieInsert, Dynamic: true}}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	be := b.Snapshot().Backend("app")
	if be.Config.DynamicCookieKey != "" || be.KeyFingerprint != KeyFingerprint("top-secret-key") {
		t.Errorf("snapshot key %q, fingerprint %q", be.Config.DynamicCookieKey, be.KeyFingerprint)
	}
	if b.State().Config.Backends[0].DynamicCookieKey != "top-secret-key" {
		t.Error("the durable state lost the key")
	}
}
