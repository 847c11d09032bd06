// Package compat holds Tether's differential tests: HAProxy 2.6 and Tether
// run the same configuration on loopback and their answers are compared.
// The tests skip when haproxy is not installed, unless TETHER_E2E=require.
package compat
