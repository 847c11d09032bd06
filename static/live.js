// Live updates over the console's websocket: a full state on connect, then
// diffs. Cells are found by data-k (entity) and data-f (field); a diff is
// applied in one animation frame. The header dot says live, reconnecting
// or stale, with the age of the data. While the connection is down, or no
// message came for STALE_AFTER_MS (the hub sends at least one a second),
// the page is offline: actions are disabled and the header says so in
// words; once no message came for STALE_AFTER_MS the live data is greyed
// out too.

const STALE_AFTER_MS = 5000;

// ACTIONS are the controls disabled while the page is offline: whatever
// submits a form that changes something.
const ACTIONS = 'main form[method="post" i] button:not([type="button"]), main form[method="post" i] input[type="submit"]';

// fmtAge formats seconds like HAProxy's stats page: 4s, 3m12s, 2h05m, 3d4h.
export function fmtAge(sec) {
  sec = Math.max(0, Math.floor(sec));
  const p2 = (n) => String(n).padStart(2, "0");
  if (sec < 60) return sec + "s";
  if (sec < 3600) return Math.floor(sec / 60) + "m" + p2(sec % 60) + "s";
  if (sec < 86400) return Math.floor(sec / 3600) + "h" + p2(Math.floor((sec % 3600) / 60)) + "m";
  return Math.floor(sec / 86400) + "d" + Math.floor((sec % 86400) / 3600) + "h";
}

// buildIndex maps entity keys to the elements showing their fields.
function buildIndex(root) {
  const index = new Map();
  for (const el of root.querySelectorAll("[data-f]")) {
    const owner = el.closest("[data-k]");
    if (!owner) continue;
    const key = owner.dataset.k;
    const fields = el.dataset.f.split(",");
    const attrs = el.dataset.attr ? el.dataset.attr.split(",") : [];
    let list = index.get(key);
    if (!list) index.set(key, (list = []));
    list.push({ el, fields, attrs });
  }
  return index;
}

export function startLive(body) {
  const state = new Map(); // key -> {field: value}
  const listeners = [];
  const main = document.getElementById("main");
  const badge = document.getElementById("live");
  let index = buildIndex(document);
  let pending = new Map();
  let frame = 0;
  const notice = document.getElementById("offline");
  let lastAt = main && main.dataset.at ? Date.parse(main.dataset.at) : Date.now();
  let lastMsg = Date.now(); // when the last message arrived, by this clock
  let offline = false;
  let first = true; // the first connection is being opened
  let open = false;
  let closedSince = Date.now();
  let attempt = 0;
  let ws = null;
  let refetchWanted = false;
  let refetching = false;
  const refreshOn = body.dataset.refresh || "";
  const me = body.dataset.user || "";

  function setField(entry, field, i, value) {
    const attr = entry.attrs[i];
    const el = entry.el;
    if (attr) {
      if (el.getAttribute(attr) === value) return;
      el.setAttribute(attr, value);
      if (attr === "data-ts") {
        el.textContent = value ? fmtAge(Date.now() / 1000 - Number(value)) : "";
      } else if (attr === "data-can" && el.tagName === "BUTTON") {
        // A button enabled only while its action can succeed; while the
        // page is offline it stays disabled and comes back with the rest.
        const can = value === "yes";
        el.disabled = !can || offline;
        if (can && offline) el.dataset.offline = "";
        else delete el.dataset.offline;
      } else if (attr === "data-sel") {
        for (const b of el.querySelectorAll("button[value]")) {
          b.setAttribute("aria-pressed", String(b.value === value));
        }
      }
      return;
    }
    if (el.textContent === value) return;
    el.textContent = value;
    el.classList.remove("flash-cell");
    void el.offsetWidth; // restart the animation
    el.classList.add("flash-cell");
  }

  function applyNow() {
    frame = 0;
    const changes = pending;
    pending = new Map();
    for (const [key, fields] of changes) {
      const entries = index.get(key);
      if (!entries) continue;
      for (const entry of entries) {
        entry.fields.forEach((f, i) => {
          if (f in fields) setField(entry, f, i, fields[f]);
        });
      }
    }
  }

  function queue(cells) {
    for (const key in cells) {
      const fields = cells[key];
      let cur = state.get(key);
      if (!cur) state.set(key, (cur = {}));
      Object.assign(cur, fields);
      const p = pending.get(key);
      if (p) Object.assign(p, fields);
      else pending.set(key, { ...fields });
    }
    if (!frame) frame = requestAnimationFrame(applyNow);
  }

  // refetch replaces the page's content with a fresh render, for changes
  // of structure (servers added or removed, cookie settings) and for pages
  // that list changes. It waits while the user is typing in a form.
  async function refetch() {
    refetchWanted = true;
    if (refetching) return;
    const active = document.activeElement;
    if (active && main.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) {
      active.addEventListener("blur", () => refetch(), { once: true });
      return;
    }
    refetching = true;
    refetchWanted = false;
    try {
      const res = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (res.ok) {
        const doc = new DOMParser().parseFromString(await res.text(), "text/html");
        const fresh = doc.getElementById("main");
        if (fresh) {
          fresh.querySelectorAll(".flash").forEach((f) => f.remove());
          main.replaceChildren(...fresh.childNodes);
          index = buildIndex(document);
          if (offline) disableActions();
        }
      }
    } catch (e) {
      // The next change or reconnect tries again.
    } finally {
      refetching = false;
      if (refetchWanted) setTimeout(refetch, 250);
    }
  }

  // disableActions disables the enabled action controls, marking them so
  // that enableActions gives back only what it took.
  function disableActions() {
    for (const b of document.querySelectorAll(ACTIONS)) {
      if (b.disabled) continue;
      b.disabled = true;
      b.dataset.offline = "";
    }
  }

  function enableActions() {
    for (const b of document.querySelectorAll("[data-offline]")) {
      b.disabled = false;
      delete b.dataset.offline;
    }
  }

  // setOffline disables the actions and shows the notice, or gives them
  // back.
  function setOffline(on) {
    if (on === offline) return;
    offline = on;
    document.body.classList.toggle("offline", on);
    if (on) disableActions();
    else enableActions();
    if (notice) notice.hidden = !on;
  }

  function showStatus() {
    if (!badge) return;
    const age = (Date.now() - lastAt) / 1000;
    const silent = Date.now() - lastMsg > STALE_AFTER_MS;
    let st;
    if (open) st = silent ? "stale" : "live";
    else st = Date.now() - closedSince > 30000 ? "stale" : "reconnecting";
    const ageText = age < 1 ? "<1s" : fmtAge(age);
    badge.dataset.state = st;
    badge.querySelector(".live-text").textContent = st;
    badge.querySelector(".live-age").textContent = "data " + ageText + " old";
    setOffline((!open && !first) || silent);
    document.body.classList.toggle("stale", silent);
    if (notice && offline) {
      notice.textContent = (open ? "No updates" : "Disconnected") + " — data from " + ageText +
        " ago; actions disabled until the connection is back";
    }
  }

  function tickAges() {
    const now = Date.now() / 1000;
    for (const el of document.querySelectorAll(".age[data-ts]")) {
      const ts = Number(el.dataset.ts);
      if (ts) el.textContent = fmtAge(now - ts);
    }
    showStatus();
  }

  function onMessage(ev) {
    let m;
    try {
      m = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    lastAt = m.at || Date.now();
    lastMsg = Date.now();
    if (main) {
      main.dataset.v = String(m.v);
      main.dataset.at = new Date(lastAt).toISOString();
    }
    if (m.e) queue(m.e);
    if (m.struct) refetch();
    if (m.ev) {
      for (const e of m.ev) {
        for (const fn of listeners) fn(e, me);
        if (refreshOn && e.k === refreshOn) refetch();
      }
    }
    showStatus();
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(proto + "//" + location.host + "/ws");
    ws.onopen = () => {
      open = true;
      attempt = 0;
      showStatus();
    };
    ws.onmessage = onMessage;
    ws.onclose = (ev) => {
      // 4001: this session ended (signed out, role or password changed,
      // user deleted). Reloading shows the page as the server now allows,
      // or the sign-in page.
      if (ev.code === 4001) {
        location.reload();
        return;
      }
      if (open) closedSince = Date.now();
      open = false;
      first = false;
      showStatus();
      const delay = Math.min(15000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
      attempt++;
      setTimeout(connect, delay);
    };
  }

  if (body.hasAttribute("data-live")) {
    connect();
    setInterval(tickAges, 1000);
    showStatus();
  }

  return {
    value(key, field) {
      const s = state.get(key);
      if (s && field in s) return s[field];
      const entries = index.get(key) || [];
      for (const e of entries) {
        const i = e.fields.indexOf(field);
        if (i >= 0 && !e.attrs[i]) return e.el.textContent;
      }
      return "?";
    },
    onEvent(fn) {
      listeners.push(fn);
    },
    refetch,
    set(cells) {
      queue(cells);
    },
  };
}
