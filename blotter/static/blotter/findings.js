/*
 * Reconciliation findings on the blotter: a badge in the top bar with the number of open
 * findings (amber, red when one is critical) and a panel listing them. Read from the REST
 * API (GET /api/v1/reconciliation/findings/?open=true, the page's session) on load and
 * every few seconds; a trader sees the findings about orders of their own accounts.
 */
(function () {
  "use strict";

  const PERIOD_MS = 5000;
  const URL = "/api/v1/reconciliation/findings/?open=true&limit=50";
  const badge = document.getElementById("recon-badge");
  const tbody = document.querySelector("#recon-findings tbody");
  const empty = document.getElementById("recon-empty");
  if (!badge || !tbody) return;

  function td(text, cls) {
    const cell = document.createElement("td");
    cell.textContent = text;
    if (cls) cell.className = cls;
    return cell;
  }

  function render(rows, count) {
    tbody.replaceChildren();
    for (const f of rows) {
      const tr = document.createElement("tr");
      tr.dataset.id = f.id;
      tr.title = f.message;
      tr.append(
        td(f.severity, f.severity === "CRITICAL" ? "state-HALTED" : "state-REDUCING"),
        td(f.venue),
        td(f.kind),
        td(f.order == null ? "" : String(f.order), "num"),
        td(f.message, "msg"),
      );
      tbody.append(tr);
    }
    empty.hidden = rows.length > 0;
    badge.hidden = count === 0;
    const critical = rows.some((f) => f.severity === "CRITICAL");
    badge.className = "badge " + (critical ? "state-HALTED" : "state-REDUCING");
    badge.textContent = "Recon " + count + " open";
  }

  async function refresh() {
    try {
      const r = await fetch(URL, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!r.ok) return;
      const body = await r.json();
      render(body.results || [], body.count || 0);
    } catch (e) {
      // offline or restarting: the next period tries again
    }
  }

  refresh();
  setInterval(refresh, PERIOD_MS);
})();
