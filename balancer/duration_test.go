package balancer

import (
	"strings"
	"testing"
	"time"
)

func TestParseHAProxyTime(t *testing.T) {
	tests := []struct {
		in      string
		unit    time.Duration
		want    time.Duration
		rest    string
		wantErr string
	}{
		{in: "0", unit: time.Millisecond, want: 0},
		{in: "00", unit: time.Second, want: 0},
		{in: "5000", unit: time.Millisecond, want: 5 * time.Second},
		{in: "30", unit: time.Second, want: 30 * time.Second},
		{in: "1us", unit: time.Millisecond, want: time.Millisecond},
		{in: "1500us", unit: time.Millisecond, want: 2 * time.Millisecond},
		{in: "250ms", unit: time.Millisecond, want: 250 * time.Millisecond},
		{in: "1500ms", unit: time.Second, want: 2 * time.Second},
		{in: "2s", unit: time.Millisecond, want: 2 * time.Second},
		{in: "30m", unit: time.Millisecond, want: 30 * time.Minute},
		{in: "8h", unit: time.Second, want: 8 * time.Hour},
		{in: "24d", unit: time.Millisecond, want: 24 * 24 * time.Hour},
		{in: "10sx", unit: time.Millisecond, want: 10 * time.Second, rest: "x"},
		// HAProxy 2.6 reads "m" not followed by "s" as minutes and only
		// warns about what follows (checked with haproxy -c).
		{in: "10mx", unit: time.Millisecond, want: 10 * time.Minute, rest: "x"},
		{in: "1m30", unit: time.Second, want: time.Minute, rest: "30"},
		{in: "1ms5", unit: time.Millisecond, want: time.Millisecond, rest: "5"},
		{in: "1usx", unit: time.Second, want: time.Second, rest: "x"},
		{in: "2147483647", unit: time.Millisecond, want: 2147483647 * time.Millisecond},
		{in: "2147483647s", unit: time.Second, want: 2147483647 * time.Second},
		{in: "2147483648", unit: time.Millisecond, wantErr: "overflow"},
		{in: "2147483648s", unit: time.Second, wantErr: "overflow"},
		{in: "25d", unit: time.Millisecond, wantErr: "overflow"},
		{in: "99999999999999999999d", unit: time.Millisecond, wantErr: "overflow"},
		{in: "1us", unit: time.Second, want: time.Second},
		{in: "", unit: time.Millisecond, wantErr: "missing"},
		{in: "s", unit: time.Millisecond, wantErr: "unexpected character 's'"},
		{in: "1.5s", unit: time.Millisecond, wantErr: "unexpected character '.'"},
		{in: "10q", unit: time.Millisecond, wantErr: "unexpected character 'q'"},
		{in: "1u", unit: time.Second, wantErr: "unexpected character 'u'"},
		{in: "-1", unit: time.Millisecond, wantErr: "unexpected character '-'"},
	}
	for _, tt := range tests {
		got, rest, err := ParseHAProxyTime(tt.in, tt.unit)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseHAProxyTime(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want || rest != tt.rest {
			t.Errorf("ParseHAProxyTime(%q) = %v, %q, %v; want %v, %q", tt.in, got, rest, err, tt.want, tt.rest)
		}
	}
}

func TestFormatHAProxyTime(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0"},
		{time.Microsecond, "1us"},
		{time.Millisecond, "1ms"},
		{1500 * time.Millisecond, "1500ms"},
		{30 * time.Second, "30s"},
		{90 * time.Minute, "90m"},
		{8 * time.Hour, "8h"},
		{48 * time.Hour, "2d"},
		{1500 * time.Nanosecond, "1us"},
	}
	for _, tt := range tests {
		if got := FormatHAProxyTime(tt.d); got != tt.want {
			t.Errorf("FormatHAProxyTime(%v) = %q, want %q", tt.d, got, tt.want)
		}
		unit := time.Millisecond
		switch {
		case tt.d%time.Microsecond != 0:
			continue
		case tt.d%time.Millisecond != 0:
			unit = time.Microsecond
		}
		back, rest, err := ParseHAProxyTime(FormatHAProxyTime(tt.d), unit)
		if err != nil || rest != "" || back != tt.d {
			t.Errorf("FormatHAProxyTime(%v) = %q reads back as %v, %q (%v)", tt.d, FormatHAProxyTime(tt.d), back, rest, err)
		}
	}
}

func TestTrailingTimeWarning(t *testing.T) {
	want := "unexpected character 'x' after the timer value '10sx', only (us=microseconds,ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are supported. This will be reported as an error in next versions."
	if got := TrailingTimeWarning("10sx", "x"); got != want {
		t.Errorf("TrailingTimeWarning = %q\nwant %q", got, want)
	}
	if got := TrailingTimeWarning("10s", ""); got != "" {
		t.Errorf("TrailingTimeWarning without rest = %q, want empty", got)
	}
}
