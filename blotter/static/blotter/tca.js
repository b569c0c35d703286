/* The blotter's TCA view: reads /api/v1/tca/ and /api/v1/routing/scores/ (session auth)
   and draws them with Chart.js (vendored: static/blotter/vendor, no network needed).
   #tca[data-state] is "loading", then "ready" (or "error") once everything is drawn. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("tca-config").textContent);
  const root = document.getElementById("tca");
  const form = document.getElementById("tca-filters");
  const errorBox = document.getElementById("tca-error");
  const COLORS = ["#4c9aff", "#d4a72c", "#2fb36b", "#e5534b", "#b083f0", "#39c5cf"];
  const charts = {};

  Chart.defaults.color = "#8b97a6";
  Chart.defaults.borderColor = "#283140";
  Chart.defaults.animation = false;

  const fields = ["account", "symbol", "venue", "since"];
  const initial = new URLSearchParams(window.location.search);
  fields.forEach((f) => { if (initial.get(f)) form.elements[f].value = initial.get(f); });

  function text(value, fallback) {
    return value === null || value === undefined || value === "" ? (fallback || "–") : String(value);
  }

  function cell(row, value, cls) {
    const td = document.createElement("td");
    td.textContent = text(value);
    if (cls) td.className = cls;
    return row.appendChild(td);
  }

  function costCell(row, value) {  // cost figures: positive (a cost) red, negative green
    const td = cell(row, value, "num");
    const n = value === null || value === undefined ? 0 : Number(value);
    if (n !== 0) td.classList.add(n > 0 ? "pos" : "neg");
    return td;
  }

  function fill(tableId, rows, build) {
    const body = document.querySelector(`#${tableId} tbody`);
    body.replaceChildren(...rows.map((r) => { const tr = document.createElement("tr"); build(tr, r); return tr; }));
  }

  function aggregateRow(tr, r, key) {
    tr.dataset.key = r[key];
    cell(tr, r[key]);
    cell(tr, r.orders, "num");
    cell(tr, r.fills, "num");
    cell(tr, r.filled_notional, "num");
    costCell(tr, r.slippage_bp);
    costCell(tr, r.effective_spread_bp);
    cell(tr, r.fees_bp, "num");
    cell(tr, r.markout_1s_bp, "num");
    cell(tr, r.markout_5s_bp, "num");
    cell(tr, r.markout_60s_bp, "num");
  }

  function venueColor(venues, venue) {
    return COLORS[Math.max(0, venues.indexOf(venue)) % COLORS.length];
  }

  function binLabel(b) {
    if (b.lower_bp === null) return `< ${b.upper_bp}`;
    if (b.upper_bp === null) return `≥ ${b.lower_bp}`;
    return `${b.lower_bp}..${b.upper_bp}`;
  }

  function draw(id, spec) {
    if (charts[id]) charts[id].destroy();
    charts[id] = new Chart(document.getElementById(id), spec);
  }

  function drawSlippage(report, venues) {
    const bins = report.slippage_histogram;
    const lowers = bins.filter((b) => b.lower_bp !== null && b.upper_bp !== null).map((b) => b.lower_bp);
    const labels = [];
    if (bins.some((b) => b.lower_bp === null)) labels.push(binLabel({ lower_bp: null, upper_bp: bins.find((b) => b.lower_bp === null).upper_bp }));
    if (lowers.length) {
      const step = bins.find((b) => b.lower_bp !== null && b.upper_bp !== null);
      const width = step.upper_bp - step.lower_bp;
      for (let lo = Math.min(...lowers); lo <= Math.max(...lowers); lo += width) labels.push(`${lo}..${lo + width}`);
    }
    if (bins.some((b) => b.upper_bp === null)) labels.push(binLabel({ lower_bp: bins.find((b) => b.upper_bp === null).lower_bp, upper_bp: null }));
    const datasets = venues.map((venue) => ({
      label: venue,
      backgroundColor: venueColor(venues, venue),
      data: labels.map((label) => {
        const hit = bins.find((b) => b.venue === venue && binLabel(b) === label);
        return hit ? hit.fills : 0;
      }),
    }));
    draw("chart-slippage", {
      type: "bar",
      data: { labels, datasets },
      options: {
        responsive: true, maintainAspectRatio: false,
        scales: { x: { title: { display: true, text: "slippage bp" } }, y: { beginAtZero: true, title: { display: true, text: "fills" } } },
      },
    });
  }

  function drawMarkouts(report, venues) {
    const horizons = [["+1 s", "markout_1s_bp"], ["+5 s", "markout_5s_bp"], ["+60 s", "markout_60s_bp"]];
    const datasets = report.by_venue.map((v) => ({
      label: v.venue,
      borderColor: venueColor(venues, v.venue),
      backgroundColor: venueColor(venues, v.venue),
      spanGaps: true,
      data: horizons.map(([, key]) => (v[key] === null ? null : Number(v[key]))),
    }));
    draw("chart-markouts", {
      type: "line",
      data: { labels: horizons.map(([label]) => label), datasets },
      options: {
        responsive: true, maintainAspectRatio: false,
        scales: { y: { title: { display: true, text: "bp" } } },
      },
    });
  }

  function render(report, scores) {
    const venues = report.by_venue.map((v) => v.venue);
    fill("tca-venues", report.by_venue, (tr, r) => aggregateRow(tr, r, "venue"));
    fill("tca-days", report.by_day, (tr, r) => aggregateRow(tr, r, "day"));
    fill("tca-scores", scores.scores, (tr, r) => {
      tr.dataset.venue = r.venue;
      tr.dataset.symbol = r.symbol;
      tr.dataset.score = r.score;
      [r.venue, r.symbol].forEach((v) => cell(tr, v));
      [r.score, r.children, r.fill_rate, r.reject_rate, r.ack_latency_p50_ms].forEach((v) => cell(tr, v, "num"));
      costCell(tr, r.slippage_bp);
      cell(tr, r.markout_1s_bp, "num");
      cell(tr, r.markout_5s_bp, "num");
    });
    fill("tca-orders", report.orders, (tr, o) => {
      tr.dataset.orderId = o.order_id;
      cell(tr, new Date(o.arrival_at).toLocaleString());
      cell(tr, o.client_order_id);
      cell(tr, o.account);
      cell(tr, o.symbol);
      cell(tr, o.side, o.side === "buy" ? "buy-text" : "sell-text");
      cell(tr, o.routed ? `routed: ${o.venues.join(", ") || "–"}` : o.venue);
      cell(tr, o.status);
      [o.quantity, o.filled_quantity, o.arrival_mid, o.average_price].forEach((v) => cell(tr, v, "num"));
      costCell(tr, o.slippage_bp);
      costCell(tr, o.effective_spread_bp);
      cell(tr, o.fees, "num");
      [o.markout_1s_bp, o.markout_5s_bp, o.markout_60s_bp].forEach((v) => cell(tr, v, "num"));
    });
    document.getElementById("tca-empty").hidden = report.orders.length > 0;
    document.getElementById("tca-counts").textContent =
      `${report.orders.length} of ${report.orders_total} orders since ${new Date(report.since).toLocaleString()}`;
    drawSlippage(report, venues);
    drawMarkouts(report, venues);
  }

  async function getJson(path) {
    const response = await fetch(config.api + path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
    return body;
  }

  async function load() {
    root.dataset.state = "loading";
    errorBox.textContent = "";
    const params = new URLSearchParams();
    fields.forEach((f) => { const v = form.elements[f].value.trim(); if (v) params.set(f, v); });
    const scoreParams = new URLSearchParams();
    ["symbol", "venue"].forEach((f) => { if (params.get(f)) scoreParams.set(f, params.get(f)); });
    try {
      const [report, scores] = await Promise.all([
        getJson(`tca/?${params}`),
        getJson(`routing/scores/?${scoreParams}`),
      ]);
      render(report, scores);
      window.history.replaceState(null, "", `?${params}`);
      root.dataset.state = "ready";
    } catch (err) {
      errorBox.textContent = err.message;
      root.dataset.state = "error";
    }
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  load();
})();
