// Refreshes the backend page's history chart each time the console writes
// history, without reloading the page or touching the chart's form. Loaded
// by the chart itself; without it the chart is as of the page's load.
const section = document.getElementById("history");
if (section) {
	const every = Math.max(Number(section.dataset.every) || 60000, 1000);
	const refresh = async () => {
		if (document.hidden) return;
		try {
			const res = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
			if (!res.ok) return;
			const doc = new DOMParser().parseFromString(await res.text(), "text/html");
			const fresh = doc.querySelector("#history .histbody");
			const cur = section.querySelector(".histbody");
			if (fresh && cur) cur.replaceWith(document.importNode(fresh, true));
		} catch {
			// Offline: the header says so; the next round tries again.
		}
	};
	setInterval(refresh, every);
}
