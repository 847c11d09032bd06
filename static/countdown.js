// Countdowns: an element of class "countdown" with data-until (Unix
// seconds, set by the page and by live updates) shows the time left every
// second, and says when the window has ended.
import { fmtAge } from "./live.js";

export function startCountdowns(doc) {
  const tick = () => {
    const now = Date.now() / 1000;
    for (const el of doc.querySelectorAll(".countdown[data-until]")) {
      const until = Number(el.dataset.until);
      if (!until) continue;
      const left = until - now;
      const text = left > 0 ? fmtAge(left) + " left" : "window ended";
      if (el.textContent !== text) el.textContent = text;
    }
  };
  tick();
  setInterval(tick, 1000);
}
