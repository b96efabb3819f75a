// Live board: the server says when the ledger changed (server-sent events); the rows are fetched again.
(function () {
  const table = document.querySelector("table[data-live]");
  if (!table || !window.EventSource) return;
  const body = table.querySelector("tbody");
  const live = document.getElementById("live");
  let pending = false;
  async function refresh() {
    if (pending) return;
    pending = true;
    try {
      const response = await fetch(table.dataset.live + window.location.search, { credentials: "same-origin" });
      if (response.ok) body.innerHTML = await response.text();
      const counts = document.getElementById("counts");
      if (counts) {
        const fresh = await fetch(counts.dataset.live, { credentials: "same-origin" });
        if (fresh.ok) counts.innerHTML = await fresh.text();
      }
    } finally {
      pending = false;
    }
  }
  const source = new EventSource("/events");
  source.addEventListener("changed", refresh);
  source.onopen = () => { if (live) live.textContent = "Live: the board follows the ledger."; };
  source.onerror = () => { if (live) live.textContent = "Live updates paused: reconnecting…"; };
  setInterval(refresh, 30000); // times left move on even when nothing is written
})();
