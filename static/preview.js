// Change-address forms (data-preview): while an address is typed, ask the
// console what the server's cookie becomes there, show it under the form,
// and say it in the confirmation before the change is sent. Without this
// script the form's Preview button does the same with a page load.

export function startPreviews(doc) {
  doc.documentElement.classList.add("js");
  const timers = new WeakMap();
  const latest = new WeakMap();

  async function preview(form) {
    const out = form.querySelector("output.preview");
    const btn = form.querySelector('button[value="apply"]');
    const addr = form.elements.addr.value.trim();
    const port = form.elements.port.value.trim();
    const seq = (latest.get(form) || 0) + 1;
    latest.set(form, seq);
    if (!addr) {
      out.textContent = "";
      return;
    }
    let j;
    try {
      const res = await fetch(form.dataset.preview + "?" + new URLSearchParams({ addr, port }), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      j = await res.json();
    } catch (err) {
      j = { ok: false, message: "The console could not be reached: " + err.message };
    }
    if (latest.get(form) !== seq) return; // a newer preview is on its way
    out.textContent = j.message || "";
    out.dataset.cookie = j.cookie || "";
    out.classList.toggle("bad", !j.ok);
    if (btn && j.ok) {
      btn.dataset.confirm =
        "Change the address of " + form.dataset.server + " to " + addr + (port ? " port " + port : "") + "? " + j.message;
      if (j.command) btn.dataset.cmd = j.command;
    }
  }

  doc.addEventListener("input", (e) => {
    const form = e.target.closest && e.target.closest("form[data-preview]");
    if (!form) return;
    clearTimeout(timers.get(form));
    timers.set(form, setTimeout(() => preview(form), 150));
  });
}
