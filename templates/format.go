package templates

import (
	"net/http"
	"strconv"
	"strings"
)

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

// SocatCommand returns a shell line sending cmd to the Runtime API with
// socat. target is a socat address ("/run/tether.sock" is taken as a UNIX
// socket path, "tcp:127.0.0.1:9999" is used as is); "" gives a placeholder.
func SocatCommand(cmd, target string) string {
	switch {
	case target == "":
		target = "UNIX-CONNECT:/run/tether/admin.sock"
	case strings.HasPrefix(target, "/"):
		target = "UNIX-CONNECT:" + target
	}
	return "echo " + shellQuote(cmd) + " | socat stdio " + shellQuote(target)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@,=+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func serverPath(s ServerRow) string { return "/backends/" + s.Backend + "/servers/" + s.Name }

func cmdState(s ServerRow, mode string) string {
	return "set server " + s.Backend + "/" + s.Name + " state " + mode
}

func cmdAddr(s ServerRow) string {
	return "set server " + s.Backend + "/" + s.Name + " addr <ip> port <port>"
}

// confirmAddr is the confirmation shown before an address change; preview
// says what the cookie becomes, when known.
func confirmAddr(s ServerRow, preview string) string {
	msg := "Change the address of " + s.Name + "?"
	if preview != "" {
		return msg + " " + preview
	}
	return msg + " A computed cookie changes with the address: clients pinned to " + s.Name + " lose their server and are rebalanced."
}

func cmdWeight(s ServerRow) string {
	return "set server " + s.Backend + "/" + s.Name + " weight <w>"
}

func cmdDynamic(b BackendView, enable bool) string {
	if enable {
		return "enable dynamic-cookie backend " + b.Name
	}
	return "disable dynamic-cookie backend " + b.Name
}

func modeLabel(m string) string {
	switch m {
	case "ready":
		return "Ready"
	case "drain":
		return "Drain"
	}
	return "Maint"
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// yesNo is a flag as an attribute value the page's script updates.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// cmdTitle is a control's tooltip: the command it sends, or why it is disabled.
func cmdTitle(cmd string, perms Perms) string {
	if !perms.Admin {
		return cmd + " — " + perms.Why
	}
	return "sends: " + cmd
}

// confirmState is the confirmation shown before a state change; {{k|f}}
// placeholders are replaced by live values in the browser.
func confirmState(s ServerRow, mode string) string {
	k := s.Key
	switch mode {
	case "drain":
		return "Drain " + s.Name + "? New clients go to other servers; clients pinned to it (about {{" + k + "|pin}} requests/s) keep using it until they leave."
	case "maint":
		return "Put " + s.Name + " in maintenance? It stops taking traffic and its checks stop; {{" + k + "|cur}} sessions are open and clients pinned to it (about {{" + k + "|pin}} requests/s) will be redispatched and get a new cookie."
	}
	return ""
}

func modeName(m string) string {
	if m == "" {
		return "passive (only read)"
	}
	return m
}

func channelName(c string) string {
	if c == "" {
		return "all"
	}
	return c
}

func statusText(code int) string {
	return strconv.Itoa(code) + " " + http.StatusText(code)
}
