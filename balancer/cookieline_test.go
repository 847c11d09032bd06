package balancer

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"tether/balancer/e2etest"
)

// cookieLineCase is one cookie line with what ParseCookieLineWarnings must
// return for it. The same table is checked against HAProxy 2.6.
type cookieLineCase struct {
	name  string
	args  []string
	want  *CookieConfig // nil when the line is refused
	errs  []string      // HAProxy's messages, in order
	warns []string
}

// noDot is HAProxy's warning for a domain without a dot.
func noDot(d string) string {
	return "domain '" + d + "' contains no embedded dot, this configuration may not work properly (see RFC6265#5.2.3)."
}

func cookieLineCases() []cookieLineCase {
	return []cookieLineCase{
		{name: "passive", args: []string{"JSESSIONID"}, want: &CookieConfig{Name: "JSESSIONID"}},
		{name: "insert", args: []string{"SRV", "insert"}, want: &CookieConfig{Name: "SRV", Mode: CookieInsert}},
		{name: "rewrite", args: []string{"SRV", "rewrite"}, want: &CookieConfig{Name: "SRV", Mode: CookieRewrite}},
		{name: "prefix", args: []string{"SRV", "prefix"}, want: &CookieConfig{Name: "SRV", Mode: CookiePrefix}},
		{name: "mode twice", args: []string{"SRV", "insert", "insert"}, want: &CookieConfig{Name: "SRV", Mode: CookieInsert}},
		{name: "every flag", args: []string{"SRV", "insert", "indirect", "nocache", "postonly", "preserve", "httponly", "secure", "dynamic"},
			want: &CookieConfig{Name: "SRV", Mode: CookieInsert, Indirect: true, NoCache: true, PostOnly: true, Preserve: true, HTTPOnly: true, Secure: true, Dynamic: true}},
		{name: "any order", args: []string{"SRV", "dynamic", "nocache", "indirect", "insert"},
			want: &CookieConfig{Name: "SRV", Mode: CookieInsert, Indirect: true, NoCache: true, Dynamic: true}},
		{name: "prefix preserve indirect", args: []string{"SRV", "prefix", "preserve", "indirect"},
			want: &CookieConfig{Name: "SRV", Mode: CookiePrefix, Preserve: true, Indirect: true}},
		{name: "domains", args: []string{"SRV", "insert", "domain", ".a.example", "domain", "b-c_d.example"},
			want: &CookieConfig{Name: "SRV", Mode: CookieInsert, Domains: []string{".a.example", "b-c_d.example"}}},
		{name: "domain without dot", args: []string{"SRV", "insert", "domain", "localhost"},
			want: &CookieConfig{Name: "SRV", Mode: CookieInsert, Domains: []string{"localhost"}}, warns: []string{noDot("localhost")}},
		{name: "dates", args: []string{"SRV", "insert", "maxidle", "30m", "maxlife", "8h"},
			want: &CookieConfig{Name: "SRV", Mode: CookieInsert, MaxIdle: 30 * time.Minute, MaxLife: 8 * time.Hour}},
		{name: "bare seconds", args: []string{"SRV", "insert", "maxidle", "90", "maxlife", "1d"},
			want: &CookieConfig{Name: "SRV", Mode: CookieInsert, MaxIdle: 90 * time.Second, MaxLife: 24 * time.Hour}},
		{name: "rounded up to seconds", args: []string{"SRV", "insert", "maxidle", "1500ms", "maxlife", "5us"},
			want: &CookieConfig{Name: "SRV", Mode: CookieInsert, MaxIdle: 2 * time.Second, MaxLife: time.Second}},
		{name: "zero", args: []string{"SRV", "insert", "maxidle", "0"}, want: &CookieConfig{Name: "SRV", Mode: CookieInsert}},
		{name: "largest time", args: []string{"SRV", "insert", "maxlife", "2147483647"},
			want: &CookieConfig{Name: "SRV", Mode: CookieInsert, MaxLife: MaxHAProxyTimer * time.Second}},
		{name: "characters after the unit", args: []string{"SRV", "insert", "maxidle", "10sx", "maxlife", "1m30"},
			want:  &CookieConfig{Name: "SRV", Mode: CookieInsert, MaxIdle: 10 * time.Second, MaxLife: time.Minute},
			warns: []string{TrailingTimeWarning("10sx", "x"), TrailingTimeWarning("1m30", "30")}},
		{name: "attrs", args: []string{"SRV", "insert", "attr", "SameSite=Lax", "attr", "Partitioned", "attr", "Max-Age=60 x"},
			want: &CookieConfig{Name: "SRV", Mode: CookieInsert, Attrs: []string{"SameSite=Lax", "Partitioned", "Max-Age=60 x"}}},
		{name: "empty word ends the line", args: []string{"SRV", "insert", "", "bogus"}, want: &CookieConfig{Name: "SRV", Mode: CookieInsert}},
		{name: "name that is a keyword", args: []string{"insert", "prefix"}, want: &CookieConfig{Name: "insert", Mode: CookiePrefix}},

		{name: "no name", args: nil, errs: []string{"'cookie' expects <cookie_name> as argument."}},
		{name: "empty name", args: []string{"", "insert"}, errs: []string{"'cookie' expects <cookie_name> as argument."}},
		{name: "unknown option", args: []string{"SRV", "insert", "sticky"},
			errs: []string{"'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', 'nocache', 'postonly', 'domain', 'maxidle', 'dynamic', 'maxlife' and 'attr' options."}},
		{name: "domain without value", args: []string{"SRV", "domain"}, errs: []string{"'domain' expects <domain> as argument."}},
		{name: "domain with bad character", args: []string{"SRV", "domain", ".exa/mple.com"},
			errs: []string{"character '/' is not permitted in domain name '.exa/mple.com'."}},
		{name: "bad domain without dot", args: []string{"SRV", "domain", "a:b"},
			errs: []string{"character ':' is not permitted in domain name 'a:b'."}, warns: []string{noDot("a:b")}},
		{name: "maxidle without value", args: []string{"SRV", "maxidle"}, errs: []string{"'maxidle' expects <idletime> in seconds as argument."}},
		{name: "maxlife without value", args: []string{"SRV", "maxlife"}, errs: []string{"'maxlife' expects <lifetime> in seconds as argument."}},
		{name: "maxidle bad unit", args: []string{"SRV", "maxidle", "5x"}, errs: []string{"unexpected character 'x' in argument to <maxidle>."}},
		{name: "maxidle bad u", args: []string{"SRV", "maxidle", "1u"}, errs: []string{"unexpected character 'u' in argument to <maxidle>."}},
		{name: "maxlife negative", args: []string{"SRV", "maxlife", "-1"}, errs: []string{"unexpected character '-' in argument to <maxlife>."}},
		{name: "maxlife unit only", args: []string{"SRV", "maxlife", "s"}, errs: []string{"unexpected character 's' in argument to <maxlife>."}},
		{name: "maxidle overflow", args: []string{"SRV", "maxidle", "2147483648"},
			errs: []string{"timer overflow in argument <2147483648> to <maxidle>, maximum value is 2147483647 s (~68 years)."}},
		{name: "maxlife overflow in days", args: []string{"SRV", "maxlife", "3000000d"},
			errs: []string{"timer overflow in argument <3000000d> to <maxlife>, maximum value is 2147483647 s (~68 years)."}},
		{name: "attr without value", args: []string{"SRV", "attr"}, errs: []string{"'attr' expects <value> as argument."}},
		{name: "attr with semicolon", args: []string{"SRV", "attr", "a;b"}, errs: []string{"character '%x3B' is not permitted in attribute value."}},
		{name: "attr with tab", args: []string{"SRV", "attr", "a\tb"}, errs: []string{"character '%x09' is not permitted in attribute value."}},
		{name: "attr with DEL", args: []string{"SRV", "attr", "a\x7fb"}, errs: []string{"character '%x7F' is not permitted in attribute value."}},
		{name: "rewrite indirect", args: []string{"SRV", "rewrite", "indirect"}, errs: []string{"cookie 'rewrite' and 'indirect' modes are incompatible."}},
		{name: "two modes", args: []string{"SRV", "insert", "prefix"}, errs: []string{"cookie 'rewrite', 'insert' and 'prefix' modes are incompatible."}},
		{name: "two modes and indirect", args: []string{"SRV", "rewrite", "insert", "indirect"},
			errs: []string{"cookie 'rewrite' and 'indirect' modes are incompatible.", "cookie 'rewrite', 'insert' and 'prefix' modes are incompatible."}},
		{name: "preserve alone", args: []string{"SRV", "preserve"}, errs: []string{"cookie 'preserve' requires at least 'insert' or 'indirect'."}},
		{name: "preserve rewrite", args: []string{"SRV", "rewrite", "preserve"}, errs: []string{"cookie 'preserve' requires at least 'insert' or 'indirect'."}},
		{name: "every mode rule", args: []string{"SRV", "rewrite", "prefix", "preserve"},
			errs: []string{"cookie 'rewrite', 'insert' and 'prefix' modes are incompatible.", "cookie 'preserve' requires at least 'insert' or 'indirect'."}},
	}
}

// errorLines returns the messages of err, one per joined error.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, errorLines(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

func TestParseCookieLine(t *testing.T) {
	for _, tc := range cookieLineCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, warns, err := ParseCookieLineWarnings(tc.args)
			if !reflect.DeepEqual(warns, tc.warns) {
				t.Errorf("warnings = %q, want %q", warns, tc.warns)
			}
			if tc.want == nil {
				if got != nil {
					t.Errorf("config = %+v, want nil with the error", got)
				}
				if lines := errorLines(err); !reflect.DeepEqual(lines, tc.errs) {
					t.Fatalf("errors = %q, want %q", lines, tc.errs)
				}
				var le *CookieLineError
				if !errors.As(err, &le) {
					t.Errorf("error %T is not a *CookieLineError", err)
				}
				if _, err2 := ParseCookieLine(tc.args); err2 == nil || err2.Error() != err.Error() {
					t.Errorf("ParseCookieLine error = %v, want %v", err2, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("config = %+v, want %+v", got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate refuses what the parser accepted: %v", err)
			}
			back, err := ParseCookieLine(got.Words())
			if err != nil || !reflect.DeepEqual(back, got) {
				t.Errorf("Words() = %q reads back as %+v, %v", got.Words(), back, err)
			}
		})
	}
}

func TestCookieLineOptionOfErrors(t *testing.T) {
	tests := []struct {
		args   []string
		option string
	}{
		{[]string{}, ""},
		{[]string{"S", "bogus"}, ""},
		{[]string{"S", "domain", "a/b"}, "domain"},
		{[]string{"S", "maxidle", "x"}, "maxidle"},
		{[]string{"S", "maxlife", ""}, "maxlife"},
		{[]string{"S", "attr", "a;b"}, "attr"},
		{[]string{"S", "preserve"}, ""},
	}
	for _, tt := range tests {
		_, err := ParseCookieLine(tt.args)
		var le *CookieLineError
		if !errors.As(err, &le) || le.Option != tt.option {
			t.Errorf("ParseCookieLine(%q) error %v has option %q, want %q", tt.args, err, optionOf(le), tt.option)
		}
	}
}

func optionOf(e *CookieLineError) string {
	if e == nil {
		return "<none>"
	}
	return e.Option
}

func TestCookieConfigWords(t *testing.T) {
	tests := []struct {
		c    *CookieConfig
		want string
	}{
		{nil, ""},
		{&CookieConfig{Name: "JSESSIONID"}, "JSESSIONID"},
		{&CookieConfig{Name: "SERVER_USED", Mode: CookieInsert, Indirect: true, NoCache: true, Dynamic: true}, "SERVER_USED insert indirect nocache dynamic"},
		{&CookieConfig{Name: "SRV", Mode: CookieInsert, Indirect: true, NoCache: true, PostOnly: true, Preserve: true, HTTPOnly: true, Secure: true, Dynamic: true,
			Domains: []string{".example.com", ".example.org"}, MaxIdle: 30 * time.Minute, MaxLife: 8 * time.Hour, Attrs: []string{"SameSite=Lax", "Priority=High"}},
			"SRV insert indirect nocache postonly preserve httponly secure dynamic domain .example.com domain .example.org maxidle 30m maxlife 8h attr SameSite=Lax attr Priority=High"},
		{&CookieConfig{Name: "L", Mode: CookieRewrite, MaxIdle: 90 * time.Second, MaxLife: 48 * time.Hour}, "L rewrite maxidle 90s maxlife 2d"},
		{&CookieConfig{Name: "P", Mode: CookiePrefix, Attrs: []string{"a b"}}, "P prefix attr a b"},
	}
	for _, tt := range tests {
		if got := strings.Join(tt.c.Words(), " "); got != tt.want {
			t.Errorf("Words() = %q, want %q", got, tt.want)
		}
	}
}

func TestCookieConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		c      *CookieConfig
		want   string // "" when valid
		option string
	}{
		{"nil", nil, "", ""},
		{"passive", &CookieConfig{Name: "S"}, "", ""},
		{"full", &CookieConfig{Name: "S", Mode: CookieInsert, Indirect: true, Preserve: true, Domains: []string{".a.example"},
			MaxIdle: time.Hour, MaxLife: MaxHAProxyTimer * time.Second, Attrs: []string{"SameSite=Lax"}}, "", ""},
		{"no name", &CookieConfig{Mode: CookieInsert}, "'cookie' expects <cookie_name> as argument.", ""},
		{"unknown mode", &CookieConfig{Name: "S", Mode: 9}, "unknown cookie mode 9.", ""},
		{"rewrite indirect", &CookieConfig{Name: "S", Mode: CookieRewrite, Indirect: true}, "cookie 'rewrite' and 'indirect' modes are incompatible.", ""},
		{"preserve", &CookieConfig{Name: "S", Mode: CookiePrefix, Preserve: true}, "cookie 'preserve' requires at least 'insert' or 'indirect'.", ""},
		{"empty domain", &CookieConfig{Name: "S", Domains: []string{""}}, "'domain' expects <domain> as argument.", "domain"},
		{"bad domain", &CookieConfig{Name: "S", Domains: []string{"a b"}}, "character ' ' is not permitted in domain name 'a b'.", "domain"},
		{"empty attr", &CookieConfig{Name: "S", Attrs: []string{""}}, "'attr' expects <value> as argument.", "attr"},
		{"bad attr", &CookieConfig{Name: "S", Attrs: []string{"a\nb"}}, "character '%x0A' is not permitted in attribute value.", "attr"},
		{"fractional maxidle", &CookieConfig{Name: "S", MaxIdle: 1500 * time.Millisecond}, "'maxidle' expects a whole number of seconds from 0 to 2147483647, not 1.5s.", "maxidle"},
		{"negative maxlife", &CookieConfig{Name: "S", MaxLife: -time.Second}, "'maxlife' expects a whole number of seconds from 0 to 2147483647, not -1s.", "maxlife"},
		{"huge maxlife", &CookieConfig{Name: "S", MaxLife: (MaxHAProxyTimer + 1) * time.Second}, "'maxlife' expects a whole number of seconds from 0 to 2147483647, not 596523h14m8s.", "maxlife"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
			var le *CookieLineError
			if !errors.As(err, &le) || le.Option != tt.option {
				t.Errorf("option = %q, want %q", optionOf(le), tt.option)
			}
		})
	}
}

func FuzzParseCookieLine(f *testing.F) {
	for _, tc := range cookieLineCases() {
		f.Add(strings.Join(tc.args, " "))
	}
	f.Add("SRV insert indirect nocache dynamic domain .a domain b maxidle 1m30 maxlife 7d attr x attr y")
	f.Add("S  insert")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, " ")
		c, _, err := ParseCookieLineWarnings(args)
		if err != nil {
			if c != nil {
				t.Fatalf("config %+v returned with error %v", c, err)
			}
			var le *CookieLineError
			if !errors.As(err, &le) || err.Error() == "" {
				t.Fatalf("error %v (%T) is not a *CookieLineError with a message", err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate refuses %q, which the parser accepted: %v", line, err)
		}
		words := c.Words()
		for _, w := range words {
			if w == "" {
				t.Fatalf("Words() = %q holds an empty word", words)
			}
		}
		back, warns, err := ParseCookieLineWarnings(words)
		if err != nil {
			t.Fatalf("Words() = %q does not parse: %v", words, err)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip of %q through %q: %+v, want %+v", line, words, back, c)
		}
		for _, w := range warns {
			if !strings.HasPrefix(w, "domain '") {
				t.Fatalf("canonical words %q give warning %q", words, w)
			}
		}
		if again := back.Words(); !reflect.DeepEqual(again, words) {
			t.Fatalf("Words() not stable: %q then %q", words, again)
		}
	})
}

// TestParseCookieLineMatchesHAProxy runs haproxy -c on every case of the
// table and compares its alerts and warnings for the cookie line with
// ParseCookieLineWarnings'.
func TestParseCookieLineMatchesHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs haproxy; skipped in -short mode")
	}
	haproxy := e2etest.RequireProgram(t, "haproxy")
	dir := t.TempDir()
	// Messages look like "[ALERT]    (123) : config : parsing [c.cfg:7] : msg"
	// or "[WARNING]  (123) : config : msg".
	msgRE := regexp.MustCompile(`^\[(ALERT|WARNING)\] +\(\d+\) : config : (?:parsing \[c\.cfg:(\d+)\] ?: )?(.*)$`)
	for i, tc := range cookieLineCases() {
		t.Run(tc.name, func(t *testing.T) {
			words := make([]string, len(tc.args))
			for j, w := range tc.args {
				words[j] = haproxyQuote(w)
			}
			cfg := "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\nbackend b\n  cookie " +
				strings.Join(words, " ") + "\n  server s 127.0.0.1:1\n"
			path := filepath.Join(dir, fmt.Sprintf("c%d", i), "c.cfg")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(haproxy, "-c", "-f", "c.cfg")
			cmd.Dir = filepath.Dir(path)
			out, _ := cmd.CombinedOutput()
			var alerts, warns []string
			for _, l := range strings.Split(string(out), "\n") {
				m := msgRE.FindStringSubmatch(l)
				if m == nil {
					continue
				}
				switch {
				case m[1] == "ALERT" && m[2] == "8":
					alerts = append(alerts, m[3])
				case m[1] == "WARNING" && (m[2] == "8" || strings.Contains(m[3], "after the timer value")):
					warns = append(warns, m[3])
				}
			}
			if !reflect.DeepEqual(alerts, tc.errs) {
				t.Errorf("haproxy alerts = %q, table says %q\n%s", alerts, tc.errs, out)
			}
			if !reflect.DeepEqual(warns, tc.warns) {
				t.Errorf("haproxy warnings = %q, table says %q\n%s", warns, tc.warns, out)
			}
		})
	}
}

// haproxyQuote writes w as one word of an HAProxy configuration line.
func haproxyQuote(w string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(w); i++ {
		switch c := w[i]; c {
		case '"', '\\', '$':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(&b, `\x%02x`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
