// Inline actions: forms marked data-inline are sent with fetch and answered
// in JSON; the reply (the Runtime API commands sent, HAProxy's reply text on
// error) is shown in a toast with "copy as socat". Confirmations state the
// live figures they affect.

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (e) {
    const ta = el("textarea");
    ta.value = text;
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand("copy");
    ta.remove();
    return ok;
  }
}

// toast shows a message; errors stay until closed.
export function toast(kind, message, commands = [], socat = [], reply = "") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const t = el("div", "toast " + kind);
  t.setAttribute("role", kind === "err" ? "alert" : "status");
  const close = el("button", "close", "×");
  close.type = "button";
  close.setAttribute("aria-label", "dismiss");
  close.addEventListener("click", () => t.remove());
  t.append(close);
  if (message) t.append(el("div", "", message));
  commands.forEach((c, i) => {
    const line = el("div", "cmd");
    line.append(el("code", "", c));
    if (socat[i]) {
      const b = el("button", "copy", "copy as socat");
      b.type = "button";
      b.dataset.copy = socat[i];
      b.title = socat[i];
      line.append(b);
    }
    t.append(line);
  });
  if (reply) t.append(el("pre", "reply", reply));
  box.append(t);
  while (box.children.length > 5) box.firstChild.remove();
  if (kind !== "err") setTimeout(() => t.remove(), 8000);
}

// flashToToast shows the server-rendered reply to a form sent without
// script (a flash in the page) as a toast, so every action answers the same
// way, and the answer survives the page refreshing its content.
function flashToToast(f) {
  const commands = [];
  const socat = [];
  for (const line of f.querySelectorAll(".cmd")) {
    const code = line.querySelector("code");
    const copy = line.querySelector("button[data-copy]");
    commands.push(code ? code.textContent : "");
    socat.push(copy ? copy.dataset.copy : "");
  }
  const p = f.querySelector("p");
  const reply = f.querySelector("pre.reply");
  toast(f.classList.contains("err") ? "err" : "ok", p ? p.textContent : "", commands, socat, reply ? reply.textContent : "");
  f.remove();
}

export function startActions(doc, live) {
  doc.querySelectorAll("main .flash").forEach(flashToToast);

  // fill replaces {{key|field}} with the live value.
  const fill = (text) => text.replace(/\{\{([^|}]+)\|([^}]+)\}\}/g, (_, k, f) => live.value(k, f));

  doc.addEventListener("submit", async (e) => {
    const form = e.target;
    const btn = e.submitter;
    if (document.body.classList.contains("offline") && form.closest("main")) {
      e.preventDefault();
      toast("err", "Not sent: the console is disconnected and the page may be out of date. Actions come back with the connection.");
      return;
    }
    let conf = (btn && btn.dataset.confirm) || form.dataset.confirm;
    // A form with a grace window confirms what the chosen window does.
    const grace = form.elements.namedItem("grace");
    if (btn && btn.dataset.confirmGrace && grace && grace.tagName === "SELECT" && grace.value) {
      conf = btn.dataset.confirmGrace.replaceAll("{{grace}}", grace.selectedOptions[0].textContent);
    }
    if (conf && !window.confirm(fill(conf))) {
      e.preventDefault();
      return;
    }
    if (!form.hasAttribute("data-inline")) return;
    e.preventDefault();
    const data = new URLSearchParams(new FormData(form, btn));
    form.classList.add("busy");
    try {
      const res = await fetch(form.action, {
        method: "POST",
        body: data,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      let j;
      try {
        j = await res.json();
      } catch (err) {
        j = { ok: false, message: res.status + " " + res.statusText };
      }
      toast(j.ok ? "ok" : "err", j.message || "", j.commands || [], j.socat || [], j.reply || "");
      // A form holding a secret (a private key) is emptied once sent.
      if (j.ok && form.hasAttribute("data-reset")) form.reset();
      if (j.ok && form.classList.contains("seg") && btn) {
        form.setAttribute("data-sel", btn.value);
        for (const b of form.querySelectorAll("button[value]")) b.setAttribute("aria-pressed", String(b === btn));
      }
    } catch (err) {
      toast("err", "The console could not be reached: " + err.message);
    } finally {
      form.classList.remove("busy");
    }
  });

  doc.addEventListener("click", async (e) => {
    const b = e.target.closest("button[data-copy]");
    if (!b) return;
    const ok = await copyText(b.dataset.copy);
    const old = b.textContent;
    b.textContent = ok ? "copied" : "copy failed";
    setTimeout(() => (b.textContent = old), 1200);
  });

  live.onEvent((ev, me) => {
    if (ev.k === "change" && ev.ch === "console" && ev.actor === me) return;
    if (ev.k === "health") toast(ev.msg && / is (DOWN|going DOWN)/.test(ev.msg) ? "err" : "info", ev.msg || "");
    else if (ev.k === "warning") toast("err", ev.msg || "", ev.cmd ? [ev.cmd] : []);
    else if (ev.cmd) toast("info", (ev.actor || ev.ch || "someone") + " via " + (ev.ch || "?") + ":", [ev.cmd]);
  });
}
