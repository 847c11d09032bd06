package compat

import (
	"fmt"
	"testing"
)

// TestForwardForMatchesHAProxy runs "option forwardfor" with each of its
// arguments, on the frontend, the backend or both, through HAProxy and
// Tether, and compares what the server receives, for requests with and
// without an X-Forwarded-For header of their own. Clients connect from
// 127.0.0.0/8.
func TestForwardForMatchesHAProxy(t *testing.T) {
	origin := echoOrigin(t)
	cases := []struct{ name, fe, be string }{
		{name: "frontend", fe: "option forwardfor"},
		{name: "backend", be: "option forwardfor"},
		{name: "except the client's network", fe: "option forwardfor except 127.0.0.0/8"},
		{name: "except another network with a dotted mask", fe: "option forwardfor except 10.0.0.0/255.0.0.0"},
		{name: "except one address", be: "option forwardfor except 127.0.0.1"},
		{name: "header", fe: "option forwardfor header X-Client-IP"},
		{name: "if-none", fe: "option forwardfor if-none"},
		{name: "if-none with another header", fe: "option forwardfor header X-Real-IP if-none"},
		{name: "backend header wins", fe: "option forwardfor header X-Fe", be: "option forwardfor header X-Be"},
		{name: "if-none on one side only", fe: "option forwardfor if-none", be: "option forwardfor"},
		{name: "except on the backend only", fe: "option forwardfor", be: "option forwardfor except 127.0.0.0/8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startPair(t, func(bind, socket string) string {
				return fmt.Sprintf(globalAndDefaults, socket) +
					fmt.Sprintf("frontend fe\n    bind %s\n    %s\n    default_backend be\n\nbackend be\n    %s\n    server s %s\n", bind, tc.fe, tc.be, origin)
			})
			for _, hdr := range [][]string{nil, {"X-Forwarded-For: 192.0.2.1"}, {"X-Real-IP: 192.0.2.2", "X-Client-IP: 192.0.2.3"}} {
				hs := append([]string{"Host: www.example.com", "Content-Length: 0"}, hdr...)
				h, g := answerOf(t, p.haproxyURL, "GET / HTTP/1.1", hs), answerOf(t, p.tetherURL, "GET / HTTP/1.1", hs)
				if h != g {
					t.Errorf("request with %v:\nhaproxy %s\ntether  %s", hdr, h, g)
				}
			}
		})
	}
}
