package haproxycfg

import (
	"reflect"
	"strings"
	"testing"

	"tether/balancer"
)

func TestParseLogFormatAndCaptures(t *testing.T) {
	src := `global
    log 127.0.0.1:5140 len 4096 format rfc5424 local0 info
    log-tag shop
    log-send-hostname web-1
defaults
    mode http
    log global
    log-format "%ci [%tr] %{+Q}r"
frontend plain
    bind :80
    default_backend b
frontend own
    bind :81
    log-format "%ci:%cp %ST %B %tsc %CC %CS %hr %hs %{+Q}HU\ 100%%"
    log-tag own
    capture request header Host len 32
    capture request header User-Agent len 64
    capture response header Location len 20
    capture cookie SRV len 12
    default_backend b
frontend httplog
    bind :82
    option httplog
    default_backend b
frontend clf
    bind :83
    log-format "%{+Q}o %{-Q}ci - - [%trg] %r %ST %B \"\" \"\" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl"
    default_backend b
backend b
    server s 10.0.0.1:80
`
	cfg, _, err := Parse("l.cfg", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Global
	if g.LogTag != "shop" || !g.LogSendHostname || g.LogHostname != "web-1" {
		t.Errorf("global log-tag %q, log-send-hostname %v %q", g.LogTag, g.LogSendHostname, g.LogHostname)
	}
	want := []balancer.LogTarget{{Address: "127.0.0.1:5140", Len: 4096, Format: "rfc5424", Facility: "local0", Level: "info"}}
	if !reflect.DeepEqual(g.Logs, want) {
		t.Errorf("global logs %+v, want %+v", g.Logs, want)
	}
	plain, own, httplog := cfg.Frontends[0], cfg.Frontends[1], cfg.Frontends[2]
	if plain.LogFormat != "%ci [%tr] %{+Q}r" || plain.HTTPLog {
		t.Errorf("inherited log-format %q, httplog %v", plain.LogFormat, plain.HTTPLog)
	}
	if own.LogFormat != `%ci:%cp %ST %B %tsc %CC %CS %hr %hs %{+Q}HU 100%%` || own.LogTag != "own" {
		t.Errorf("own log-format %q, log-tag %q", own.LogFormat, own.LogTag)
	}
	caps := []balancer.Capture{{Name: "Host", Len: 32}, {Name: "User-Agent", Len: 64}}
	if !reflect.DeepEqual(own.CaptureRequest, caps) || !reflect.DeepEqual(own.CaptureResponse, []balancer.Capture{{Name: "Location", Len: 20}}) ||
		own.CaptureCookie == nil || *own.CaptureCookie != (balancer.Capture{Name: "SRV", Len: 12}) {
		t.Errorf("captures %+v %+v %+v", own.CaptureRequest, own.CaptureResponse, own.CaptureCookie)
	}
	if !httplog.HTTPLog || httplog.LogFormat != "" {
		t.Errorf("option httplog after an inherited log-format: httplog %v, log-format %q", httplog.HTTPLog, httplog.LogFormat)
	}
	out, err := Format(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := Parse("again.cfg", out)
	if err != nil {
		t.Fatalf("written configuration does not parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(again.Global.Logs, cfg.Global.Logs) || again.Global.LogTag != g.LogTag || again.Global.LogHostname != g.LogHostname ||
		!reflect.DeepEqual(again.Frontends[1].CaptureRequest, caps) || again.Frontends[1].LogFormat != own.LogFormat ||
		again.Frontends[0].LogFormat != plain.LogFormat || again.Frontends[1].LogTag != "own" ||
		again.Frontends[3].LogFormat != cfg.Frontends[3].LogFormat || !strings.Contains(cfg.Frontends[3].LogFormat, `[%trg] %r %ST %B "" ""`) {
		t.Errorf("round trip changed the log settings:\n%s", out)
	}
}

func TestParseLogRefusals(t *testing.T) {
	tests := []struct {
		line, want string
	}{
		{`log-format "%ci %ID"`, "l.cfg:4: log-format: log-format variable '%ID' is not supported by Tether"},
		{`log-format "%ci %[src]"`, "l.cfg:4: log-format: log-format sample expressions"},
		{`log-format "%ci %zz"`, "l.cfg:4: log-format: no such format variable 'zz'"},
		{`log-format "%{+X}ci"`, "l.cfg:4: log-format: log-format flag '+X' is not supported by Tether"},
		{`log-format %ci %ST`, "l.cfg:4: log-format expects only one argument"},
		{`capture cookie SRV len 0`, "l.cfg:4: 'capture cookie' expects a positive length"},
		{`capture request header Host`, "l.cfg:4: 'capture request header' expects <header> 'len' <length>"},
		{`log 127.0.0.1 len 10 local0`, "l.cfg:4: invalid log length '10'"},
	}
	for _, tt := range tests {
		src := "frontend f\n    mode http\n    bind :80\n    " + tt.line + "\n"
		_, _, err := Parse("l.cfg", []byte(src))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.line, err, tt.want)
		}
	}
}
