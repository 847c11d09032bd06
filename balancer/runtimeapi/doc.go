// Package runtimeapi is Tether's Runtime API: HAProxy's "stats socket"
// command language, its framing and its replies, byte for byte as HAProxy
// 2.6 writes them for the commands Tether implements.
//
// A Dispatcher runs command lines against a balancer; Listen serves it on
// UNIX and TCP sockets; Dial and Client talk to any such socket, Tether's
// or HAProxy's own. The web console calls Dispatcher.Execute for every
// button, so the console and a socket client can never disagree.
//
// # Framing
//
// As in HAProxy 2.6, input is a stream of commands separated by unescaped
// ';' or '\n' (a backslash escapes the next character; there are no
// quotes), at most 64 words each, and at most 16383 bytes each with their
// delimiter: a longer command closes the connection without a reply. Every
// command's output is followed by "\n", or by "\n> " in prompt mode. A
// message that HAProxy writes without a final newline (for example
// "Trailing garbage in weight string") is therefore not followed by an
// empty line, exactly as with HAProxy. A non-interactive session ends once
// it has answered every command it has received; "prompt" toggles the
// interactive mode (2.6 ignores its arguments) and "quit" closes at once.
// A command ending in "<<" takes the following lines, up to an empty one,
// as payload.
//
// # Extension: show sticky
//
// "show sticky [<backend>]" (any level) reports cookie persistence per
// server, in the style of "show servers state": a format version line
// ("2"), a "# " header naming the columns, then one space-separated line
// per server:
//
//	be_id be_name srv_id srv_name cookie cookie_dynamic pinned new_sessions invalid expired redispatched old_key old_addr reissued old_clients
//
// cookie is the value that pins a client to the server ("-" when none, and
// at user level), cookie_dynamic is 1 when it was computed from the
// backend's dynamic-cookie key, and the last eight columns are the
// counters of balancer.StickyCounters (format 1 had the first five). An unknown backend gives "Can't
// find backend.".
//
// # Extension: set cookie and show cookie
//
// "set cookie backend <backend> <cookie line>" (admin level) replaces a
// backend's cookie line at run time, as if its "cookie" line in the
// configuration had been rewritten: the words after the backend are the
// line's words without the "cookie" keyword, for example
//
//	set cookie backend app SRV insert indirect nocache dynamic maxidle 30m
//
// They are checked by balancer.ParseCookieLine, and a refused line is
// answered with HAProxy 2.6's configuration message for it, one per line
// ("cookie 'rewrite' and 'indirect' modes are incompatible."). Success
// prints nothing. Like every change it is persisted and audited. Computed
// cookies follow the new line at once: dropping "dynamic" leaves servers
// without a cookie unless they have their own.
//
// "show cookie backend <backend>" (any level: the line holds no secret)
// prints the backend's cookie line in canonical order, "cookie" then its
// words escaped for this command language (a space in a word as "\ "),
// so that the words after "cookie" can be given back to "set cookie
// backend". A backend without a cookie line prints nothing. Both commands
// answer "A backend name is expected." and "No such backend." as
// HAProxy's backend commands do.
//
// # Extension: dynamic-cookie grace
//
// Changing a backend's dynamic-cookie key, or a server's address, changes
// the server's dynamic cookie, and HAProxy then treats every cookie a
// client holds as invalid. Tether can keep the previous ones valid for a
// while, opt-in:
//
//	set dynamic-cookie-key backend <bk> <k> grace <delay>
//
// (admin level) replaces the key like HAProxy's command and keeps cookies
// computed with the previous key (and with keys retired before it whose
// window is still open) valid for <delay>: such a cookie takes the request
// to the server it was computed for, if that server would take a valid
// cookie (running, or down with option persist; otherwise the request is
// redispatched as HAProxy does), and the response gives the client the
// server's current cookie, as insert mode sets it (with the backend's
// attributes, dates and postonly rule; in prefix mode the application's
// value follows the '~'). Without "grace" the command is HAProxy's, and
// it also ends the windows of earlier retired keys. <delay> is in
// HAProxy's time syntax (30m, 2h; a bare number is milliseconds). Success
// prints nothing.
//
//	set dynamic-cookie-addr-grace backend <bk> <delay>
//
// (admin level) does the same for address changes: from then on, when a
// server's address or port changes (set server addr, DNS re-resolution of
// a server-template slot, a reload that moves the server), cookies
// computed from the previous address keep reaching the server for
// <delay>. 0, the default, is HAProxy's behaviour. Both settings are
// stored like every change and survive restarts; the retired keys are
// kept with the other keys, shown only by fingerprint.
//
//	show dynamic-cookie-grace [<backend>]
//
// (any level) lists, after a format version line ("1") and a "# " header,
// one "addr-grace" line per backend with its setting, then one line per
// open window: "key" with a retired key's fingerprint, "addr" with
// "<server>@<address>:<port>" (the server's name alone at user level),
// each with when the window ends (RFC 3339, UTC) and the seconds left:
//
//	be_id be_name kind subject until remaining_s
//
// "show sticky" counts, per server, the requests that came with such a
// cookie (old_key, old_addr) and the cookies re-issued (reissued).
//
// # Extension: reload
//
// "reload" (admin level) makes the process re-read its configuration file
// and apply what changed in one step, as SIGUSR2 and SIGHUP do (HAProxy's
// master CLI has a command of that name). The reply lists the changes,
// or says "Reload: no change."; a file that does not validate, or a change
// that needs a restart, is answered with the error and changes nothing.
package runtimeapi
