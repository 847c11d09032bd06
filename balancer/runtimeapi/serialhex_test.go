package runtimeapi

import (
	"crypto/x509"
	"math/big"
	"testing"
)

// TestSerialHexIsTheMagnitude checks the serial as show ssl cert prints
// it: HAProxy 2.6 printed 8C1EB785B09348 for that serial, without the
// zero byte DER puts before a number whose top bit is set.
func TestSerialHexIsTheMagnitude(t *testing.T) {
	for serial, want := range map[int64]string{
		0:                "00",
		1:                "01",
		0x8C1EB785B09348: "8C1EB785B09348",
		0x3F1EB785B09348: "3F1EB785B09348",
		0x80:             "80",
		0x123:            "0123",
	} {
		c := &x509.Certificate{SerialNumber: big.NewInt(serial)}
		if got := serialHex(c); got != want {
			t.Errorf("serial %#x: %q, want %q", serial, got, want)
		}
	}
}
