package web

import (
	"strings"
	"testing"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// a11yPages are the pages an admin sees, with every kind of control.
var a11yPages = []string{"/", "/backends/servers", "/backends/servers/servers/s1/drain", "/audit", "/users", "/inspect"}

// TestBrowserControlsHaveNames reads the accessibility tree of every page:
// each control has an accessible name.
func TestBrowserControlsHaveNames(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, Options{Socat: "/run/tether/admin.sock"})
	browserLogin(t, ctx, e, "alice")
	controls := map[string]bool{"button": true, "link": true, "textbox": true, "combobox": true, "checkbox": true,
		"radio": true, "spinbutton": true, "searchbox": true, "listbox": true, "switch": true}
	for _, path := range a11yPages {
		navigate(t, ctx, e.console.URL+path)
		// A toast has a close button too.
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`import("/static/actions.js").then(m => m.toast("err", "test"))`, chromedp.EvalAwaitPromise)); err != nil {
			t.Fatalf("show a toast: %v", err)
		}
		tree, err := chromedp.Call(ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
		if err != nil {
			t.Fatalf("accessibility tree of %s: %v", path, err)
		}
		n := 0
		for _, node := range tree.Nodes {
			if node.Ignored || node.Role == nil {
				continue
			}
			role := strings.Trim(string(node.Role.Value), `"`)
			if !controls[role] {
				continue
			}
			n++
			name := ""
			if node.Name != nil {
				name = strings.Trim(string(node.Name.Value), `" `)
			}
			if name == "" {
				t.Errorf("%s: a %s without an accessible name (DOM node %d)", path, role, node.BackendDOMNodeID)
			}
		}
		if n < 5 {
			t.Errorf("%s: only %d controls in the accessibility tree", path, n)
		}
	}
}

// TestBrowserFocusVisible tabs through every page: each control reached
// by the keyboard shows a focus outline at least 2 px wide.
func TestBrowserFocusVisible(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, Options{Socat: "/run/tether/admin.sock"})
	browserLogin(t, ctx, e, "alice")
	const focused = `(() => {
		const el = document.activeElement;
		if (!el || el === document.body) return "";
		const s = getComputedStyle(el);
		const seen = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2;
		const id = el.tagName.toLowerCase() + (el.name ? "[name=" + el.name + "]" : "") + " " + (el.getAttribute("aria-label") || el.textContent.trim().slice(0, 30));
		return (seen ? "ok " : "invisible ") + id;
	})()`
	for _, path := range a11yPages {
		navigate(t, ctx, e.console.URL+path)
		reached := 0
		first := ""
		for i := 0; i < 400; i++ {
			if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
				t.Fatalf("press Tab: %v", err)
			}
			got, err := chromedp.Run(ctx, chromedp.Evaluate[string](focused))
			if err != nil {
				t.Fatalf("read the focus: %v", err)
			}
			if got == "" || got == first {
				break
			}
			if first == "" {
				first = got
			}
			reached++
			if !strings.HasPrefix(got, "ok ") {
				t.Errorf("%s: focus not visible on %s", path, strings.TrimPrefix(got, "invisible "))
			}
		}
		if reached < 5 {
			t.Errorf("%s: Tab reached only %d controls", path, reached)
		}
	}
}

// TestBrowserSparklinesLegible checks the request-rate trend of each server
// row: tall enough to read, drawn with a line that stands out from the row.
func TestBrowserSparklinesLegible(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, Options{})
	browserLogin(t, ctx, e, "alice")
	navigate(t, ctx, e.console.URL+"/")
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const sparks = [...document.querySelectorAll("tr[data-k] svg.spark")];
		if (sparks.length < 3) return "only " + sparks.length + " sparklines";
		for (const svg of sparks) {
			const path = getComputedStyle(svg.querySelector("path"));
			const h = svg.getBoundingClientRect().height;
			const bg = getComputedStyle(svg.closest("td")).backgroundColor;
			if (h < 18) return "sparkline " + h + " px tall";
			if (parseFloat(path.strokeWidth) < 1.5) return "stroke " + path.strokeWidth;
			if (path.stroke === bg || path.stroke === "none") return "stroke " + path.stroke + " on " + bg;
		}
		return "";
	})()`))
	if err != nil || got != "" {
		t.Fatalf("sparklines: %s (err %v)", got, err)
	}
}
