package frontdoor

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestStripCookies(t *testing.T) {
	names := []string{"tether_session"}
	tests := []struct {
		name string
		in   []string
		want []string // nil: no Cookie header left
	}{
		{"absent", []string{"SRV=abc; x=1"}, []string{"SRV=abc; x=1"}},
		{"only", []string{"tether_session=tok"}, nil},
		{"first", []string{"tether_session=tok; SRV=abc; x=1"}, []string{"SRV=abc; x=1"}},
		{"middle", []string{"SRV=abc; tether_session=tok; x=1"}, []string{"SRV=abc; x=1"}},
		{"last", []string{"SRV=abc; tether_session=tok"}, []string{"SRV=abc"}},
		{"comma separated", []string{"a=1, tether_session=tok, SRV=s1"}, []string{"a=1, SRV=s1"}},
		{"spaces around", []string{"  tether_session = tok ;SRV=abc"}, []string{"SRV=abc"}},
		{"twice", []string{"tether_session=a; SRV=abc; tether_session=b"}, []string{"SRV=abc"}},
		{"several headers", []string{"SRV=abc", "tether_session=tok", "x=1; tether_session=t"}, []string{"SRV=abc", "x=1"}},
		{"name as a value", []string{"x=tether_session; y=2"}, []string{"x=tether_session; y=2"}},
		{"longer name", []string{"tether_session2=keep; tether_session=drop"}, []string{"tether_session2=keep"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []string
			h := StripCookies(names, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = r.Header["Cookie"]
			}))
			r := httptest.NewRequest("GET", "/", nil)
			r.Header["Cookie"] = append([]string(nil), tt.in...)
			h.ServeHTTP(httptest.NewRecorder(), r)
			if !reflect.DeepEqual(seen, tt.want) {
				t.Errorf("Cookie %q → %q, want %q", tt.in, seen, tt.want)
			}
		})
	}
}

func BenchmarkStripCookiesAbsent(b *testing.B) {
	h := StripCookies([]string{"tether_session"}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header["Cookie"] = []string{"SERVER_USED=8de25f0458ef6623; _ga=GA1.2.3.4; theme=dark"}
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
