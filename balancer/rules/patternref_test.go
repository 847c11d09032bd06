package rules

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestPatternRefChanges changes a pattern file shared by two ACLs with
// different methods while requests are matched, and checks what each
// change does and that matching allocates nothing.
func TestPatternRefChanges(t *testing.T) {
	refs := NewRefs()
	s := NewSet(func(string) ([]byte, error) { return []byte("/a\n  /b\n"), nil })
	s.UseRefs(refs)
	if err := s.DefineAt(strings.Fields("exact path -f p.lst"), Source{"t.cfg", 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.DefineAt(strings.Fields("prefix path_beg -f p.lst /z"), Source{"t.cfg", 4}); err != nil {
		t.Fatal(err)
	}
	exact, err := s.CondAt([]string{"if", "exact"}, Source{"t.cfg", 5})
	if err != nil {
		t.Fatal(err)
	}
	prefix, err := s.CondAt([]string{"if", "prefix"}, Source{"t.cfg", 6})
	if err != nil {
		t.Fatal(err)
	}
	refs.Number()
	req := func(path string) *Request { return &Request{Method: "GET", Target: path, Header: http.Header{}} }
	check := func(step string, want map[string][2]bool) {
		t.Helper()
		for path, w := range want {
			if got := [2]bool{exact.Match(req(path)), prefix.Match(req(path))}; got != w {
				t.Errorf("%s: %s matches exact/prefix %v, want %v", step, path, got, w)
			}
		}
	}
	ref := refs.Lookup("p.lst")
	if ref == nil || refs.Lookup("#0") != ref || ref.Description() != "pattern loaded from file 'p.lst' used by acl at file 't.cfg' line 3, by acl at file 't.cfg' line 4" {
		t.Fatalf("reference %v: %q", ref, ref.Description())
	}
	if own := refs.Lookup("#2"); own == nil || own.Description() != "acl 'path_beg' file 't.cfg' line 4" || len(own.Entries()) != 1 {
		t.Fatalf("the second line's own values: %+v", own)
	}
	check("loaded", map[string][2]bool{"/a": {true, true}, "/b/x": {false, true}, "/c": {false, false}, "/z1": {false, true}})
	if err := ref.Add("/c"); err != nil {
		t.Fatal(err)
	}
	check("added /c", map[string][2]bool{"/c": {true, true}, "/c/d": {false, true}})
	if !ref.Delete("/a") || ref.Delete("/a") {
		t.Error("Delete reports wrongly whether /a was there")
	}
	check("deleted /a", map[string][2]bool{"/a": {false, false}, "/b": {true, true}})
	first := ref.Entries()[0]
	if !ref.Delete("#"+EntryAddress(first.ID)) || len(ref.Entries()) != 1 {
		t.Errorf("delete by address %s: entries %v", EntryAddress(first.ID), ref.Entries())
	}
	ref.Clear()
	check("cleared", map[string][2]bool{"/c": {false, false}, "/z": {false, true}})

	// Matching takes no allocation, while the file changes.
	zz := req("/zz")
	if n := testing.AllocsPerRun(100, func() { prefix.Match(zz) }); n != 0 {
		t.Errorf("a match allocates %v times", n)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 200 {
			ref.Add("/y")
			ref.Delete("/y")
		}
	}()
	r := req("/y")
	for range 200 {
		exact.Match(r)
	}
	wg.Wait()
}

// TestPatternRefAddChecksEveryUser refuses a pattern one of the ACLs using
// the file cannot read, and changes nothing.
func TestPatternRefAddChecksEveryUser(t *testing.T) {
	refs := NewRefs()
	s := NewSet(func(string) ([]byte, error) { return []byte("10.0.0.1\n"), nil })
	s.UseRefs(refs)
	for _, line := range []string{"a src -f ips.lst", "b path -f ips.lst"} {
		if err := s.DefineAt(strings.Fields(line), Source{"t.cfg", 1}); err != nil {
			t.Fatal(err)
		}
	}
	refs.Number()
	ref := refs.Lookup("ips.lst")
	if err := ref.Add("bad-ip"); err == nil || err.Error() != "'bad-ip' is not a valid IPv4 or IPv6 address" {
		t.Errorf("Add(bad-ip) = %v", err)
	}
	if n := len(ref.Entries()); n != 1 {
		t.Errorf("%d entries after a refused add, want 1", n)
	}
}
