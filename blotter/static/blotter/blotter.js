/* OMS blotter: live state over /ws/blotter/, actions over the REST API.
 *
 * The server sends a snapshot on connect, then batches of events. Each event carries a
 * sequence number per stream ("account:<id>", "global"). Events at or below the
 * snapshot's number are already in it; the next number is applied; a jump is held for
 * a moment (two worker processes can publish a hair out of order) and, if the missing
 * event does not come, a fresh snapshot is requested. The once-a-second tick carries
 * the server's counters, so a lost last event is noticed too. A dropped connection
 * reconnects with backoff and starts again from a snapshot.
 *
 * Plain browser JavaScript, no build step. Prices and quantities stay decimal strings;
 * arithmetic (unrealized P&L) uses BigInt fixed point, never floats.
 */
(function () {
  "use strict";

  const cfg = JSON.parse(document.getElementById("blotter-config").textContent);
  const $ = (sel, root) => (root || document).querySelector(sel);

  // --- decimals ---------------------------------------------------------------------

  function dec(text) {
    if (text === null || text === undefined || text === "") return null;
    const m = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(String(text).trim());
    if (!m || (m[2] === "" && (m[3] === undefined || m[3] === ""))) return null;
    const frac = m[3] || "";
    let digits = (m[2] || "0") + frac;
    let scale = frac.length - parseInt(m[4] || "0", 10);
    if (scale < 0) { digits += "0".repeat(-scale); scale = 0; }
    const v = BigInt(digits);
    return { v: m[1] === "-" ? -v : v, e: scale };
  }
  function scaled(a, e) { return a.v * 10n ** BigInt(e - a.e); }
  function decSub(a, b) { const e = Math.max(a.e, b.e); return { v: scaled(a, e) - scaled(b, e), e }; }
  function decAdd(a, b) { const e = Math.max(a.e, b.e); return { v: scaled(a, e) + scaled(b, e), e }; }
  function decMul(a, b) { return { v: a.v * b.v, e: a.e + b.e }; }
  function decSign(a) { return a ? (a.v > 0n ? 1 : a.v < 0n ? -1 : 0) : 0; }
  function placesOf(step) {
    const d = dec(step);
    if (!d) return 2;
    let { v, e } = d;
    while (e > 0 && v % 10n === 0n) { v /= 10n; e -= 1; }
    return e;
  }
  /** Round half away from zero to `places`, group thousands. */
  function fmtDec(a, places, opts) {
    if (!a) return "";
    let v = a.v;
    if (a.e > places) {
      const div = 10n ** BigInt(a.e - places);
      let q = v / div;
      const r = v % div;
      if ((r < 0n ? -r : r) * 2n >= div) q += v < 0n ? -1n : 1n;
      v = q;
    } else if (a.e < places) {
      v *= 10n ** BigInt(places - a.e);
    }
    const neg = v < 0n;
    const s = (neg ? -v : v).toString().padStart(places + 1, "0");
    const ip = s.slice(0, s.length - places).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    const fp = places ? "." + s.slice(s.length - places) : "";
    const sign = neg ? "-" : opts && opts.sign && v > 0n ? "+" : "";
    return sign + ip + fp;
  }
  /** Like fmtDec but trailing zeros beyond `minPlaces` are dropped (average prices). */
  function fmtTrim(a, minPlaces, maxPlaces) {
    let s = fmtDec(a, maxPlaces);
    if (maxPlaces > minPlaces) {
      const dot = s.indexOf(".");
      let end = s.length;
      while (end > dot + 1 + minPlaces && s[end - 1] === "0") end -= 1;
      s = s.slice(0, end);
      if (s.endsWith(".")) s = s.slice(0, -1);
    }
    return s;
  }

  // --- state ------------------------------------------------------------------------

  const TERMINAL = new Set(["DENIED", "FILLED", "CANCELED", "REJECTED", "EXPIRED"]);
  const CANCELABLE = new Set(["PENDING_NEW", "SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED"]);
  const AMENDABLE = new Set(["ACCEPTED", "PARTIALLY_FILLED"]);
  const MAX_FILLS = 300;
  const MAX_ORDER_ROWS = 400;
  const GAP_WAIT_MS = 1000;

  const state = {
    user: cfg.user,
    accounts: [],
    instruments: new Map(),
    venues: [],
    processes: null,
    orders: new Map(),
    fills: new Map(),
    positions: new Map(),
    marks: {},
    quotes: {},
    tradingState: [],
  };
  const stats = { snapshots: 0, resyncs: 0, events: 0, batches: 0, reconnects: 0, dropped: 0, lastResync: "" };
  let seqs = {};
  let held = {};
  let gapTimers = {};
  let suspects = {};
  let awaiting = true;
  let queued = [];
  let dropNext = 0;

  const dirty = { orders: false, fills: false, positions: false, venues: false, processes: false, risk: false, selects: false, quote: false };
  const flashes = { orders: new Map(), fills: new Set(), positions: new Set() };

  function instrument(symbol) {
    return state.instruments.get(symbol) || { pricePlaces: 2, qtyPlaces: 4, quote: "" };
  }
  const fmtPx = (symbol, text) => fmtDec(dec(text), instrument(symbol).pricePlaces);
  const fmtQty = (symbol, text) => fmtDec(dec(text), instrument(symbol).qtyPlaces);
  const fmtAvg = (symbol, text) => {
    const p = instrument(symbol).pricePlaces;
    return fmtTrim(dec(text), p, p + 4);
  };
  const fmtMoney = (d) => fmtDec(d, 2, { sign: true });

  function fmtTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false });
  }

  // --- connection ---------------------------------------------------------------------

  let ws = null;
  let backoff = 500;
  let holdUntil = 0;
  let reconnectTimer = null;
  let lastMessageAt = Date.now();

  function setConn(kind, text) {
    const el = $("#conn");
    el.dataset.state = kind;
    $("span", el).textContent = text || kind;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    const wait = holdUntil - Date.now();
    if (wait > 0) { reconnectTimer = setTimeout(connect, wait); return; }
    setConn("connecting");
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const sock = new WebSocket(proto + location.host + cfg.ws_path);
    ws = sock;
    awaiting = true;
    queued = [];
    sock.onopen = () => { backoff = 500; setConn("syncing"); };
    sock.onmessage = (m) => {
      if (sock !== ws) return;
      lastMessageAt = Date.now();
      onMessage(JSON.parse(m.data));
    };
    sock.onclose = (ev) => {
      if (sock !== ws) return;
      ws = null;
      if (ev.code === 4401) { location.href = cfg.login_url + "?next=/"; return; }
      stats.reconnects += 1;
      setConn("reconnecting", "reconnecting…");
      reconnectTimer = setTimeout(connect, Math.max(backoff, holdUntil - Date.now()));
      backoff = Math.min(backoff * 2, 5000);
    };
  }

  // A connection that went silent (no tick for a while) is dead even if TCP says not.
  setInterval(() => {
    if (ws && ws.readyState === WebSocket.OPEN && Date.now() - lastMessageAt > 5000) ws.close();
  }, 1000);

  function onMessage(msg) {
    switch (msg.type) {
      case "snapshot": applySnapshot(msg); break;
      case "events":
        stats.batches += 1;
        if (awaiting) queued.push(...msg.events);
        else processEvents(msg.events);
        break;
      case "tick": if (!awaiting) applyTick(msg); break;
      case "error": toast(msg.message || msg.code, "error"); break;
      default: break;
    }
    schedule();
  }

  function requestSnapshot(reason) {
    if (awaiting || !ws || ws.readyState !== WebSocket.OPEN) return;
    awaiting = true;
    queued = [];
    clearGaps();
    stats.resyncs += 1;
    stats.lastResync = reason;
    setConn("syncing", "resyncing…");
    ws.send(JSON.stringify({ type: "snapshot" }));
  }

  function clearGaps() {
    for (const t of Object.values(gapTimers)) clearTimeout(t);
    gapTimers = {};
    held = {};
    suspects = {};
  }

  // --- snapshot, events, ticks ----------------------------------------------------------

  function applySnapshot(s) {
    state.user = s.user || state.user;
    state.accounts = s.accounts || [];
    state.instruments = new Map(
      (s.instruments || []).map((i) => [i.symbol, {
        ...i, pricePlaces: placesOf(i.tick_size), qtyPlaces: placesOf(i.lot_size),
      }])
    );
    state.venues = s.venues || [];
    state.processes = s.processes || null;
    dirty.processes = true;
    state.marks = s.marks || {};
    state.quotes = s.quotes || {};
    state.orders = new Map((s.orders || []).map((o) => [o.id, o]));
    state.fills = new Map((s.fills || []).map((f) => [f.id, f]));
    state.positions = new Map((s.positions || []).map((p) => [posKey(p), p]));
    if (Array.isArray(s.trading_state)) state.tradingState = s.trading_state.map(normState);
    else refreshTradingState();
    clearGaps();
    seqs = { ...(s.seqs || {}) };
    awaiting = false;
    stats.snapshots += 1;
    const pending = queued;
    queued = [];
    processEvents(pending);
    Object.keys(dirty).forEach((k) => { dirty[k] = true; });
    setConn("live", "live");
  }

  function processEvents(events) {
    for (const e of events) {
      if (awaiting) { queued.push(e); continue; }
      if (dropNext > 0) { dropNext -= 1; stats.dropped += 1; continue; } // test hook: a lost event
      const last = seqs[e.stream];
      if (last === undefined) { requestSnapshot("new stream " + e.stream); queued.push(e); continue; }
      if (e.seq <= last) continue; // already in the snapshot
      if (e.seq === last + 1) {
        apply(e);
        seqs[e.stream] = e.seq;
        drainHeld(e.stream);
      } else {
        (held[e.stream] = held[e.stream] || new Map()).set(e.seq, e);
        if (!gapTimers[e.stream]) {
          const stream = e.stream;
          gapTimers[stream] = setTimeout(() => {
            delete gapTimers[stream];
            if (held[stream] && held[stream].size) requestSnapshot("gap in " + stream);
          }, GAP_WAIT_MS);
        }
      }
    }
  }

  function drainHeld(stream) {
    const waiting = held[stream];
    if (!waiting) return;
    while (waiting.has(seqs[stream] + 1)) {
      const next = waiting.get(seqs[stream] + 1);
      waiting.delete(next.seq);
      apply(next);
      seqs[stream] = next.seq;
    }
    for (const seq of [...waiting.keys()]) if (seq <= seqs[stream]) waiting.delete(seq);
    if (!waiting.size) {
      delete held[stream];
      clearTimeout(gapTimers[stream]);
      delete gapTimers[stream];
    }
  }

  function applyTick(t) {
    state.marks = t.marks || state.marks;
    state.quotes = t.quotes || state.quotes;
    if (t.venues) { state.venues = t.venues; dirty.venues = true; }
    if ("processes" in t) { state.processes = t.processes; dirty.processes = true; }
    dirty.positions = true;
    dirty.quote = true;
    for (const [stream, n] of Object.entries(t.seqs || {})) {
      const mine = seqs[stream];
      if (mine === undefined) continue;
      if (n < mine) { requestSnapshot("counter reset on " + stream); return; }
      if (n > mine) {
        if (suspects[stream] !== undefined && mine < suspects[stream]) {
          requestSnapshot("missed events on " + stream);
          return;
        }
        suspects[stream] = n;
      } else {
        delete suspects[stream];
      }
    }
  }

  function posKey(p) { return p.account + "|" + p.symbol; }

  function apply(e) {
    stats.events += 1;
    const d = e.data || {};
    switch (e.type) {
      case "order.updated": {
        const cur = state.orders.get(d.id);
        if (cur && (cur.version || 0) > (d.version || 0)) return;
        if (!cur || cur.status !== d.status) flashes.orders.set(d.id, d.status);
        state.orders.set(d.id, d);
        dirty.orders = true;
        if (state.orders.size > 2 * MAX_ORDER_ROWS + 1000) trimOrders();
        return;
      }
      case "fill.created":
        if (!state.fills.has(d.id)) flashes.fills.add(d.id);
        state.fills.set(d.id, d);
        if (state.fills.size > MAX_FILLS) {
          const ids = [...state.fills.keys()].sort((a, b) => a - b);
          ids.slice(0, ids.length - MAX_FILLS).forEach((id) => state.fills.delete(id));
        }
        dirty.fills = true;
        return;
      case "position.updated": {
        const key = posKey(d);
        const cur = state.positions.get(key);
        if (cur && cur.updated_at > d.updated_at) return;
        state.positions.set(key, d);
        flashes.positions.add(key);
        dirty.positions = true;
        return;
      }
      case "risk.state":
        applyRiskEvent(d);
        return;
      case "venue.status": {
        const i = state.venues.findIndex((v) => v.venue === d.venue);
        if (i >= 0) state.venues[i] = { ...state.venues[i], ...d };
        else state.venues.push(d);
        dirty.venues = true;
        return;
      }
      default:
        return; // an event type this page does not show
    }
  }

  function trimOrders() {
    const done = [...state.orders.values()].filter((o) => TERMINAL.has(o.status)).sort((a, b) => a.id - b.id);
    done.slice(0, done.length - MAX_ORDER_ROWS).forEach((o) => state.orders.delete(o.id));
  }

  // --- trading state ----------------------------------------------------------------------

  function normState(r) {
    const scope = r.scope || "global";
    let target = r.target;
    if (target === undefined) {
      target = scope === "venue" ? r.venue : scope === "account" ? r.account : scope === "symbol" ? r.symbol : null;
    }
    return {
      scope,
      target: target || null,
      symbol: scope === "account" ? r.symbol || null : null,
      state: r.state || r.new_state || "ACTIVE",
      reason: r.reason || "",
      changed_by: r.changed_by || r.changed_by_name || r.updated_by || "",
      changed_at: r.changed_at || r.updated_at || null,
    };
  }
  const stateKey = (r) => [r.scope, r.target || "", r.symbol || ""].join("|");

  function applyRiskEvent(d) {
    if (d && (d.scope || d.state)) {
      const row = normState(d);
      const i = state.tradingState.findIndex((r) => stateKey(r) === stateKey(row));
      if (i >= 0) state.tradingState[i] = row;
      else state.tradingState.push(row);
      dirty.risk = true;
    }
    refreshTradingStateSoon();
  }

  let tsTimer = null;
  function refreshTradingStateSoon() {
    clearTimeout(tsTimer);
    tsTimer = setTimeout(refreshTradingState, 250);
  }

  async function refreshTradingState() {
    const r = await api("GET", "risk/trading-state/");
    if (!r.ok || !r.data) return; // 404 until the risk engine is installed: keep the snapshot's
    const body = r.data;
    let rows = Array.isArray(body) ? body : body.results || body.states || body.trading_states || body.items;
    if (!rows && typeof body === "object") {
      rows = [];
      for (const [k, v] of Object.entries(body)) {
        if (v && typeof v === "object" && !Array.isArray(v) && v.state) rows.push({ scope: k, ...v });
        else if (typeof v === "string" && /^(ACTIVE|REDUCING|HALTED)$/.test(v)) rows.push({ scope: k, state: v });
      }
    }
    if (Array.isArray(rows)) {
      state.tradingState = rows.map(normState);
      dirty.risk = true;
      schedule();
    }
  }

  // --- rendering ------------------------------------------------------------------------

  let frame = null;
  function schedule() {
    if (frame === null) frame = requestAnimationFrame(render);
  }

  function render() {
    frame = null;
    if (dirty.selects) { renderSelects(); dirty.selects = false; }
    if (dirty.orders) { renderOrders(); dirty.orders = false; }
    if (dirty.fills) { renderFills(); dirty.fills = false; }
    if (dirty.positions) { renderPositions(); dirty.positions = false; }
    if (dirty.venues) { renderVenues(); dirty.venues = false; }
    if (dirty.processes) { renderProcesses(); dirty.processes = false; }
    if (dirty.risk) { renderTradingState(); dirty.risk = false; }
    if (dirty.quote) { renderQuote(); dirty.quote = false; }
  }

  function el(tag, text, cls, title) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    if (title) node.title = title;
    return node;
  }
  const num = (text, extra) => el("td", text, "num" + (extra ? " " + extra : ""));

  /** Keep one <tr> per key; rebuild a row only when its signature changed. */
  function renderKeyed(tbody, cache, items, key, signature, build) {
    const keep = new Set(items.map(key));
    for (const [k, row] of cache) if (!keep.has(k)) { row.tr.remove(); cache.delete(k); }
    let prev = null;
    for (const item of items) {
      const k = key(item);
      let row = cache.get(k);
      if (!row) { row = { tr: document.createElement("tr"), sig: null }; cache.set(k, row); }
      const sig = signature(item);
      if (row.sig !== sig) { build(row.tr, item); row.sig = sig; }
      const expected = prev ? prev.nextSibling : tbody.firstChild;
      if (expected !== row.tr) tbody.insertBefore(row.tr, expected);
      prev = row.tr;
    }
  }

  function flash(tr, color) {
    if (tr && tr.animate) {
      tr.animate([{ backgroundColor: color }, { backgroundColor: "transparent" }], { duration: 1800, easing: "ease-out" });
    }
  }
  const FLASH = { FILLED: "rgba(47,179,107,0.45)", PARTIALLY_FILLED: "rgba(47,179,107,0.3)", CANCELED: "rgba(139,151,166,0.35)", DENIED: "rgba(229,83,75,0.45)", REJECTED: "rgba(229,83,75,0.45)" };

  const filters = { account: "", symbol: "", status: "" };

  function orderMatches(o) {
    if (filters.account && o.account !== filters.account) return false;
    if (filters.symbol && o.symbol !== filters.symbol) return false;
    switch (filters.status) {
      case "": return true;
      case "working": return !TERMINAL.has(o.status);
      case "refused": return o.status === "DENIED" || o.status === "REJECTED";
      case "CANCELED": return o.status === "CANCELED" || o.status === "EXPIRED";
      default: return o.status === filters.status;
    }
  }

  const orderRows = new Map();
  // Parent orders (no venue: the router's) expand to their children and the route
  // decisions (fetched from the order's detail, again whenever the parent changes).
  const expanded = new Set();
  const routes = new Map(); // parent id -> { updated_at, route }
  function childrenOf(id) {
    return [...state.orders.values()].filter((c) => c.parent_id === id).sort((a, b) => a.id - b.id);
  }
  async function loadRoute(o) {
    const have = routes.get(o.id);
    if (have && (have.updated_at === o.updated_at || have.loading)) return;
    routes.set(o.id, { updated_at: have ? have.updated_at : null, route: have ? have.route : [], loading: true });
    const r = await api("GET", "orders/" + o.id + "/");
    routes.set(o.id, { updated_at: o.updated_at, route: (r.ok && r.data && r.data.route) || [], loading: false });
    dirty.orders = true;
    schedule();
  }
  function orderItems(shown) {
    const items = [];
    for (const o of shown) {
      items.push({ key: o.id, o, child: false });
      if (o.venue !== null || !expanded.has(o.id)) continue;
      for (const c of childrenOf(o.id)) items.push({ key: c.id, o: c, child: true });
      items.push({ key: "route-" + o.id, route: o });
      loadRoute(o);
    }
    return items;
  }
  function itemSignature(i) {
    if (i.route) {
      const r = routes.get(i.route.id);
      return "route|" + (r ? r.updated_at + "|" + r.route.length : "");
    }
    const o = i.o;
    return o.version + "|" + o.status + "|" + o.updated_at + "|" + i.child + "|" + expanded.has(o.id);
  }
  function buildItem(tr, i) {
    if (i.route) buildRouteRow(tr, i.route);
    else buildOrderRow(tr, i.o, i.child);
  }
  function buildRouteRow(tr, parent) {
    tr.className = "route-row";
    tr.dataset.routeFor = parent.id;
    const td = el("td");
    td.colSpan = 14;
    const r = routes.get(parent.id);
    if (!r || !r.updated_at) td.appendChild(el("span", "route: loading...", "muted"));
    for (const d of (r && r.route) || []) {
      const block = el("div", null, "route-round");
      block.appendChild(el("div", "round " + d.round + " (" + d.kind + "): " + d.outcome, "route-head"));
      const ul = el("ul");
      for (const v of d.venues) {
        const got = v.quantity && Number(v.quantity) > 0 ? fmtQty(parent.symbol, v.quantity) + " @ " + v.price : "nothing";
        const li = el("li", v.venue + ": " + got + " - " + v.reason, null,
          "price " + v.price + ", fee-adjusted " + v.fee_adjusted_price + ", available " + v.available + ", age " + v.age_ms + " ms, score " + v.score);
        li.dataset.venue = v.venue;
        ul.appendChild(li);
      }
      block.appendChild(ul);
      td.appendChild(block);
    }
    tr.replaceChildren(td);
  }
  function renderOrders() {
    const all = [...state.orders.values()];
    // a child shows under its parent (when the parent is on the page), not on its own
    const top = all.filter((o) => !(o.parent_id && state.orders.has(o.parent_id)));
    const shown = top.filter(orderMatches).sort((a, b) => b.id - a.id).slice(0, MAX_ORDER_ROWS);
    renderKeyed($("#orders tbody"), orderRows, orderItems(shown), (i) => i.key, itemSignature, buildItem);
    $("#orders-empty").hidden = shown.length > 0;
    const working = all.filter((o) => !TERMINAL.has(o.status)).length;
    $("#counts").textContent = working + " working · " + shown.length + " shown";
    for (const [id, status] of flashes.orders) {
      const row = orderRows.get(id);
      if (row) flash(row.tr, FLASH[status] || "rgba(76,154,255,0.4)");
    }
    flashes.orders.clear();
  }

  function buildOrderRow(tr, o, child) {
    tr.dataset.orderId = o.id;
    tr.dataset.clientOrderId = o.client_order_id;
    tr.dataset.status = o.status;
    if (o.parent_id) tr.dataset.parentId = o.parent_id;
    tr.classList.toggle("terminal", TERMINAL.has(o.status));
    tr.classList.toggle("child", !!child);
    const venue = el("td", o.venue || "router");
    if (o.venue === null) {
      const open = expanded.has(o.id);
      const toggle = button(open ? "\u25BE children" : "\u25B8 children", "expand", o.id);
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      venue.appendChild(toggle);
    }
    const status = el("td");
    status.appendChild(el("span", o.status.replace("_", " ").replace("_", " "), "status st-" + o.status));
    if (o.reason && (TERMINAL.has(o.status) || o.status === "ACCEPTED")) {
      status.appendChild(el("span", o.reason, "reason", o.reason));
    }
    const actions = el("td", null, "actions-cell");
    if (AMENDABLE.has(o.status)) actions.appendChild(button("Amend", "amend", o.id));
    if (CANCELABLE.has(o.status)) actions.appendChild(button("Cancel", "cancel", o.id));
    tr.replaceChildren(
      el("td", fmtTime(o.created_at), null, o.created_at),
      el("td", o.client_order_id, "cid", "#" + o.id + " " + o.client_order_id + (o.venue_order_id ? " / venue " + o.venue_order_id : "")),
      el("td", o.account),
      el("td", o.symbol),
      el("td", o.side, o.side === "buy" ? "buy-text" : "sell-text"),
      typeCell(o),
      num(fmtQty(o.symbol, o.quantity)),
      num(o.price === null ? "mkt" : fmtPx(o.symbol, o.price)),
      num(fmtQty(o.symbol, o.filled_quantity)),
      num(o.average_price ? fmtAvg(o.symbol, o.average_price) : ""),
      num(fmtQty(o.symbol, o.leaves_quantity)),
      venue,
      status,
      actions,
    );
  }

  function typeCell(o) {
    const td = el("td", o.type);
    td.appendChild(el("span", o.time_in_force, "tif"));
    return td;
  }

  function button(text, action, id) {
    const b = el("button", text, "btn small" + (action === "cancel" ? " danger-outline" : ""));
    b.type = "button";
    b.dataset.action = action;
    b.dataset.id = id;
    return b;
  }

  const fillRows = new Map();
  function renderFills() {
    const shown = [...state.fills.values()]
      .filter((f) => (!filters.account || f.account === filters.account) && (!filters.symbol || f.symbol === filters.symbol))
      .sort((a, b) => b.id - a.id).slice(0, 200);
    renderKeyed($("#fills tbody"), fillRows, shown, (f) => f.id, (f) => f.id, (tr, f) => {
      tr.dataset.fillId = f.id;
      tr.dataset.orderId = f.order_id;
      tr.title = "fee " + (f.fee || "0") + " " + (f.fee_currency || "") + (f.is_maker ? " · maker" : f.is_maker === false ? " · taker" : "") + (f.late ? " · late (after a terminal state)" : "");
      tr.replaceChildren(
        el("td", fmtTime(f.executed_at || f.created_at), null, f.executed_at || f.created_at),
        el("td", f.account),
        el("td", f.symbol),
        el("td", f.side, f.side === "buy" ? "buy-text" : "sell-text"),
        num(fmtQty(f.symbol, f.quantity)),
        num(fmtPx(f.symbol, f.price)),
        el("td", f.venue),
        el("td", f.client_order_id || "#" + f.order_id, "cid", f.venue_trade_id ? "trade " + f.venue_trade_id : ""),
      );
    });
    $("#fills-empty").hidden = shown.length > 0;
    for (const id of flashes.fills) { const row = fillRows.get(id); if (row) flash(row.tr, "rgba(76,154,255,0.4)"); }
    flashes.fills.clear();
  }

  function unrealized(p) {
    const qty = dec(p.quantity);
    const avg = dec(p.average_price);
    const mark = dec(state.marks[p.symbol] || p.mark_price);
    if (!qty || qty.v === 0n) return dec("0");
    if (!avg || !mark) return dec(p.unrealized_pnl);
    return decMul(decSub(mark, avg), qty);
  }

  const posRows = new Map();
  function renderPositions() {
    const shown = [...state.positions.values()]
      .filter((p) => (!filters.account || p.account === filters.account) && (!filters.symbol || p.symbol === filters.symbol))
      .sort((a, b) => (a.account + a.symbol < b.account + b.symbol ? -1 : 1));
    const totals = new Map();
    renderKeyed($("#positions tbody"), posRows, shown, posKey,
      (p) => [p.updated_at, p.quantity, state.marks[p.symbol] || p.mark_price].join("|"),
      (tr, p) => {
        const qty = dec(p.quantity);
        const upl = unrealized(p);
        const rpl = dec(p.realized_pnl);
        tr.dataset.account = p.account;
        tr.dataset.symbol = p.symbol;
        tr.dataset.quantity = p.quantity;
        tr.classList.toggle("terminal", decSign(qty) === 0);
        const mark = state.marks[p.symbol] || p.mark_price;
        tr.replaceChildren(
          el("td", p.account),
          el("td", p.symbol),
          num(fmtQty(p.symbol, p.quantity), "qty " + (decSign(qty) > 0 ? "pos" : decSign(qty) < 0 ? "neg" : "")),
          num(p.average_price && decSign(qty) !== 0 ? fmtAvg(p.symbol, p.average_price) : ""),
          num(mark ? fmtPx(p.symbol, mark) : ""),
          num(upl ? fmtMoney(upl) : "", "upl " + pnlClass(upl)),
          num(fmtMoney(rpl), "rpl " + pnlClass(rpl)),
          num(fmtDec(dec(p.fees), 2)),
        );
      });
    for (const p of shown) {
      const quote = instrument(p.symbol).quote || "";
      const t = totals.get(quote) || { upl: dec("0"), rpl: dec("0"), fees: dec("0") };
      const upl = unrealized(p);
      if (upl) t.upl = decAdd(t.upl, upl);
      t.rpl = decAdd(t.rpl, dec(p.realized_pnl) || dec("0"));
      t.fees = decAdd(t.fees, dec(p.fees) || dec("0"));
      totals.set(quote, t);
    }
    const foot = $("#positions tfoot");
    foot.replaceChildren(...[...totals].map(([quote, t]) => {
      const tr = el("tr");
      const label = el("td", "Total " + quote);
      label.colSpan = 5;
      tr.append(label, num(fmtMoney(t.upl), pnlClass(t.upl)), num(fmtMoney(t.rpl), pnlClass(t.rpl)), num(fmtDec(t.fees, 2)));
      return tr;
    }));
    $("#positions-empty").hidden = shown.length > 0;
    for (const key of flashes.positions) { const row = posRows.get(key); if (row) flash(row.tr, "rgba(76,154,255,0.4)"); }
    flashes.positions.clear();
  }
  /** Colour by the sign of what is shown (a P&L that rounds to 0.00 is neutral). */
  const pnlClass = (d) => {
    const shown = d ? fmtDec(d, 2) : "";
    if (!shown || /^-?[0.,]+$/.test(shown)) return "";
    return shown.startsWith("-") ? "neg" : "pos";
  };

  function renderVenues() {
    const rows = state.venues.map((v) => {
      const tr = el("tr", null, "vs-" + (v.status || "up"));
      tr.dataset.venue = v.venue;
      const name = el("td", null, null, v.detail || "");
      name.append(el("span", null, "dot"), document.createTextNode(v.venue), el("span", v.status || "", "vstatus"));
      const usage = (v.rate_limit && v.rate_limit.usage) || {};
      const top = Object.entries(usage).sort((a, b) => b[1] - a[1])[0];
      const paused = v.rate_limit && v.rate_limit.paused_for_s;
      const rate = paused ? "paused " + paused + "s" : top ? Math.round(top[1] * 100) + "%" : "";
      const breaker = v.breaker ? v.breaker.replace("_", "-") + (v.breaker_failures ? " (" + v.breaker_failures + ")" : "") : "";
      tr.append(
        name,
        el("td", breaker, v.breaker === "open" ? "neg" : ""),
        num(rate, null),
        marketData(v),
      );
      tr.lastChild.previousSibling.title = Object.entries(usage).map(([k, x]) => k + " " + Math.round(x * 100) + "%").join(", ");
      return tr;
    });
    $("#venues tbody").replaceChildren(...rows);
  }

  // market-data state and book age per symbol (oms marketdata): "BTC LIVE 120 ms"
  function marketData(v) {
    const td = el("td", null, "md");
    const items = v.market_data || [];
    if (!items.length) td.textContent = v.book_age_s === null || v.book_age_s === undefined ? "-" : v.book_age_s + " s";
    for (const m of items) {
      const age = m.age_ms === null || m.age_ms === undefined ? "" : m.age_ms < 1000 ? " " + m.age_ms + " ms" : " " + (m.age_ms / 1000).toFixed(1) + " s";
      const span = el("span", m.symbol.split("/")[0] + " " + m.state + age, "md-state md-" + m.state, m.reason || "");
      span.dataset.symbol = m.symbol;
      span.dataset.state = m.state;
      td.append(span);
    }
    return td;
  }

  // Processes under the process manager (oms up): hidden when there is none. A process
  // that died is STARTING or BACKOFF while it is restarted, FATAL when it gave up.
  const PROCESS_CLASS = { RUNNING: "vs-up", STARTING: "vs-degraded", BACKOFF: "vs-degraded" };
  function renderProcesses() {
    const panel = $("#processes-panel");
    if (!panel) return;
    const procs = state.processes;
    panel.hidden = !procs;
    if (!procs) return;
    const rows = Object.entries(procs).map(([name, p]) => {
      const tr = el("tr", null, PROCESS_CLASS[p.state] || "vs-down");
      tr.dataset.process = name;
      const cell = el("td", null, null, p.detail || "");
      cell.append(el("span", null, "dot"), document.createTextNode(name));
      const up = p.uptime_s === null || p.uptime_s === undefined ? "" : fmtUptime(p.uptime_s);
      tr.append(cell, el("td", p.state, p.state === "RUNNING" ? "" : "neg"), num(up));
      return tr;
    });
    $("#processes tbody").replaceChildren(...rows);
  }
  function fmtUptime(s) {
    if (s < 120) return s + " s";
    if (s < 7200) return Math.floor(s / 60) + " min";
    return Math.floor(s / 3600) + " h";
  }

  function renderTradingState() {
    const rows = state.tradingState;
    const global = rows.find((r) => r.scope === "global");
    const globalState = global ? global.state : "ACTIVE";
    const restricted = rows.filter((r) => r.state !== "ACTIVE" && r.scope !== "global");
    const badge = $("#trading-badge");
    badge.className = "badge state-" + (globalState !== "ACTIVE" ? globalState : restricted.length ? "REDUCING" : "ACTIVE");
    badge.textContent = "Trading " + globalState + (restricted.length ? " · " + restricted.length + " scope" + (restricted.length > 1 ? "s" : "") + " restricted" : "");
    badge.title = global && global.reason ? global.reason : "global trading state";
    const shown = rows.filter((r) => r.state !== "ACTIVE" || r.scope === "global")
      .sort((a, b) => (a.scope === "global" ? -1 : b.scope === "global" ? 1 : stateKey(a) < stateKey(b) ? -1 : 1));
    $("#trading-state tbody").replaceChildren(...shown.map((r) => {
      const tr = el("tr");
      tr.dataset.scope = r.scope;
      tr.dataset.target = r.target || "";
      tr.dataset.state = r.state;
      const label = r.scope === "global" ? "global" : r.scope + " " + (r.target || "") + (r.symbol ? " " + r.symbol : "");
      const st = el("td");
      st.appendChild(el("span", r.state, "badge state-" + r.state));
      const who = [r.changed_by, fmtTime(r.changed_at)].filter(Boolean).join(" · ");
      tr.append(el("td", label), st, el("td", r.reason || "", "reason", who));
      return tr;
    }));
    $("#trading-state-empty").hidden = shown.length > 0;
  }

  function renderQuote() {
    const symbol = ticket.elements.symbol.value;
    const q = state.quotes[symbol] || {};
    $(".q-bid b").textContent = q.bid ? fmtPx(symbol, q.bid) : "-";
    $(".q-ask b").textContent = q.ask ? fmtPx(symbol, q.ask) : "-";
    // consolidated across LIVE venues: say which venue quotes it
    $(".q-bid i").textContent = q.bid_venue || "";
    $(".q-ask i").textContent = q.ask_venue || "";
    $("#ticket-quote").classList.toggle("crossed", !!q.crossed);
  }

  function setOptions(select, options, keepFirst) {
    const current = select.value;
    const first = keepFirst ? [select.options[0].cloneNode(true)] : [];
    select.replaceChildren(...first, ...options.map(([value, text]) => {
      const o = el("option", text);
      o.value = value;
      return o;
    }));
    if ([...select.options].some((o) => o.value === current)) select.value = current;
  }

  function renderSelects() {
    const accounts = state.accounts.map((a) => [a.code, a.code]);
    const symbols = [...state.instruments.values()].filter((i) => i.enabled !== false).map((i) => [i.symbol, i.symbol]);
    setOptions($("#f-account"), accounts, true);
    setOptions($("#f-symbol"), symbols, true);
    $("#f-account").value = filters.account;
    $("#f-symbol").value = filters.symbol;
    const before = ticket.elements.account.value;
    setOptions(ticket.elements.account, accounts, false);
    if (!before && filters.account) ticket.elements.account.value = filters.account;
    setOptions(ticket.elements.symbol, symbols, false);
    setOptions(ticket.elements.venue, state.venues.filter((v) => v.enabled).map((v) => [v.venue, v.venue]), true);
    updateKillTargets();
  }

  // --- REST actions ----------------------------------------------------------------------

  async function api(method, path, body) {
    let r;
    try {
      r = await fetch(cfg.api + path, {
        method,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": cfg.csrf_token },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      return { ok: false, status: 0, data: { error: { code: "NETWORK", message: "network error: " + err.message } } };
    }
    let data = null;
    try { data = await r.json(); } catch (err) { data = null; }
    if (r.status === 401 || (r.status === 403 && data && data.error && data.error.code === "NOT_AUTHENTICATED")) {
      location.href = cfg.login_url + "?next=/";
    }
    return { ok: r.ok, status: r.status, data };
  }
  const errorText = (r) => (r.data && r.data.error && r.data.error.message) || "HTTP " + r.status;

  function toast(text, kind) {
    const t = el("div", text, "toast " + (kind || ""));
    $("#toasts").appendChild(t);
    setTimeout(() => t.remove(), kind === "error" ? 8000 : 4000);
  }

  function result(node, kind, text, items) {
    node.className = "result " + kind;
    node.replaceChildren(el("div", text));
    if (items && items.length) {
      const ul = el("ul");
      items.forEach((i) => ul.appendChild(el("li", i)));
      node.appendChild(ul);
    }
  }

  function reasonText(r) {
    if (typeof r === "string") return r;
    return r.message || r.detail || r.check || r.code || JSON.stringify(r);
  }

  const ticket = $("#ticket");
  function sideOf() { return ticket.querySelector("input[name=side]:checked").value; }
  function syncTicket() {
    const side = sideOf();
    const market = ticket.elements.type.value === "market";
    ticket.elements.price.disabled = market;
    if (market) ticket.elements.price.value = "";
    const submit = $("#ticket-submit");
    submit.className = "btn wide " + side;
    submit.textContent = (side === "buy" ? "Buy" : "Sell") + (market ? " at market" : "");
  }
  ticket.addEventListener("change", (ev) => {
    if (ev.target.name === "symbol") dirty.quote = true;
    syncTicket();
    schedule();
  });
  $("#ticket-quote").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-fill]");
    const q = state.quotes[ticket.elements.symbol.value];
    if (b && q && q[b.dataset.fill] && ticket.elements.type.value === "limit") ticket.elements.price.value = q[b.dataset.fill];
  });
  ticket.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = $("#ticket-result");
    ticket.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
    const body = {
      account: ticket.elements.account.value,
      symbol: ticket.elements.symbol.value,
      side: sideOf(),
      type: ticket.elements.type.value,
      quantity: ticket.elements.quantity.value.trim().replace(/,/g, ""),
      time_in_force: ticket.elements.time_in_force.value,
    };
    if (body.type === "limit") body.price = ticket.elements.price.value.trim().replace(/,/g, "");
    if (ticket.elements.venue.value) body.venue = ticket.elements.venue.value;
    const submit = $("#ticket-submit");
    submit.disabled = true;
    const r = await api("POST", "orders/", body);
    submit.disabled = false;
    const o = r.data && (r.data.order || r.data);
    out.dataset.clientOrderId = (o && o.client_order_id) || "";
    if (r.ok) {
      result(out, "ok", "Order " + o.client_order_id + " " + o.status + ": " + o.side + " " + fmtQty(o.symbol, o.quantity) + " " + o.symbol + (o.price ? " @ " + fmtPx(o.symbol, o.price) : " at market"));
    } else if (r.status === 422 && r.data && r.data.error) {
      const reasons = r.data.error.reasons || [];
      result(out, "denied", "Denied by risk" + (o && o.client_order_id ? " (" + o.client_order_id + ")" : "") + ":", reasons.map(reasonText));
    } else {
      const fields = (r.data && r.data.error && r.data.error.fields) || {};
      Object.keys(fields).forEach((name) => { const input = ticket.elements.namedItem(name); if (input) input.setAttribute("aria-invalid", "true"); });
      result(out, "error", errorText(r));
    }
  });

  // order row buttons
  $("#orders tbody").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    const id = Number(b.dataset.id);
    const order = state.orders.get(id);
    if (b.dataset.action === "cancel") {
      b.disabled = true;
      const r = await api("POST", "orders/" + id + "/cancel/", {});
      if (r.ok) toast("Cancel sent: " + (order ? order.client_order_id : "#" + id), "ok");
      else { b.disabled = false; toast("Cancel failed: " + errorText(r), "error"); }
    } else if (b.dataset.action === "amend" && order) {
      openAmend(order);
    } else if (b.dataset.action === "expand") {
      if (expanded.has(id)) expanded.delete(id);
      else expanded.add(id);
      renderOrders();
    }
  });

  const amendDialog = $("#amend-dialog");
  const amendForm = $("#amend-form");
  let amending = null;
  function openAmend(order) {
    amending = order;
    $("#amend-title").textContent = order.client_order_id;
    amendForm.elements.quantity.value = order.quantity;
    amendForm.elements.price.value = order.price || "";
    amendForm.elements.price.disabled = order.type === "market";
    $("#amend-result").replaceChildren();
    $("#amend-result").className = "result";
    amendDialog.showModal();
  }
  amendDialog.querySelector("[data-close]").addEventListener("click", () => amendDialog.close());
  amendForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {};
    const qty = amendForm.elements.quantity.value.trim();
    const price = amendForm.elements.price.value.trim();
    if (qty && qty !== amending.quantity) body.quantity = qty;
    if (price && price !== amending.price) body.price = price;
    const r = await api("POST", "orders/" + amending.id + "/amend/", body);
    if (r.ok) { amendDialog.close(); toast("Amend sent: " + amending.client_order_id, "ok"); }
    else result($("#amend-result"), "error", errorText(r));
  });

  const confirmDialog = $("#confirm-dialog");
  function confirmAction(text, yes) {
    $("#confirm-text").textContent = text;
    $("#confirm-yes").textContent = yes;
    return new Promise((resolve) => {
      confirmDialog.addEventListener("close", () => resolve(confirmDialog.returnValue === "yes"), { once: true });
      confirmDialog.returnValue = "";
      confirmDialog.showModal();
    });
  }

  $("#cancel-all").addEventListener("click", async () => {
    const scope = [filters.account || "all accounts", filters.symbol].filter(Boolean).join(", ");
    if (!(await confirmAction("Cancel every working order in " + scope + "?", "Cancel all"))) return;
    const body = {};
    if (filters.account) body.account = filters.account;
    if (filters.symbol) body.symbol = filters.symbol;
    const r = await api("POST", "orders/cancel-all/", body);
    if (r.ok) toast("Cancel sent for " + r.data.canceled + " order(s)", "ok");
    else toast("Cancel all failed: " + errorText(r), "error");
  });

  // kill switch (risk and admin only: the form is rendered for them alone)
  const kill = $("#kill-switch");
  function updateKillTargets() {
    if (!kill) return;
    const scope = kill.elements.scope.value;
    const options = scope === "venue" ? state.venues.map((v) => [v.venue, v.venue])
      : scope === "account" ? state.accounts.map((a) => [a.code, a.code])
      : scope === "symbol" ? [...state.instruments.keys()].map((s) => [s, s]) : [];
    setOptions(kill.elements.target, scope === "global" ? [["", "(all)"]] : options, false);
    kill.elements.target.disabled = scope === "global";
  }
  function syncKill() {
    const st = kill.elements.state.value;
    const submit = $("#kill-submit");
    submit.disabled = !kill.elements.reason.value.trim();
    submit.textContent = st === "HALTED" ? "Engage HALTED" : st === "REDUCING" ? "Set REDUCING" : "Release to ACTIVE";
    submit.className = "btn wide " + (st === "ACTIVE" ? "primary" : "danger");
  }
  if (kill) {
    kill.addEventListener("change", (ev) => { if (ev.target.name === "scope") updateKillTargets(); syncKill(); });
    kill.addEventListener("input", syncKill);
    kill.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const out = $("#kill-result");
      const reason = kill.elements.reason.value.trim();
      if (!reason) { result(out, "error", "A reason is required."); return; }
      const body = { scope: kill.elements.scope.value, state: kill.elements.state.value, reason };
      if (body.scope !== "global") body.target = kill.elements.target.value;
      const where = body.scope + (body.target ? " " + body.target : "");
      if (body.state === "HALTED" && !(await confirmAction("HALT " + where + "? New orders stop and working orders are canceled.", "Engage HALTED"))) return;
      const r = await api("POST", "risk/kill-switch/", body);
      if (r.ok) {
        result(out, "ok", body.state + " set on " + where);
        kill.elements.reason.value = "";
        syncKill();
        refreshTradingState();
      } else if (r.status === 404 && !(r.data && r.data.error && r.data.error.code !== "NOT_FOUND")) {
        result(out, "error", "The kill switch is not available on this server (risk engine not installed).");
      } else {
        result(out, "error", errorText(r));
      }
    });
    syncKill();
  }

  // filters
  function readFilters() {
    filters.account = $("#f-account").value;
    filters.symbol = $("#f-symbol").value;
    filters.status = $("#f-status").value;
    try { localStorage.setItem("oms.blotter.filters", JSON.stringify(filters)); } catch (err) { /* private mode */ }
    dirty.orders = dirty.fills = dirty.positions = true;
    if (filters.account && !ticket.elements.account.value) ticket.elements.account.value = filters.account;
    schedule();
  }
  try {
    Object.assign(filters, JSON.parse(localStorage.getItem("oms.blotter.filters") || "{}"));
    $("#f-status").value = filters.status;
  } catch (err) { /* ignore */ }
  ["#f-account", "#f-symbol", "#f-status"].forEach((s) => $(s).addEventListener("change", readFilters));

  // --- start, and hooks for tests and the curious ----------------------------------------

  window.omsBlotter = {
    state,
    stats,
    seqs: () => ({ ...seqs }),
    live: () => !awaiting && !!ws && ws.readyState === WebSocket.OPEN,
    /** Close the socket and stay away for `ms` (tests: a dropped connection). */
    dropSocket(ms) { holdUntil = Date.now() + (ms || 0); if (ws) ws.close(); },
    /** Pretend the next `n` events were lost on the way (tests: gap detection). */
    dropNextEvents(n) { dropNext = n || 1; },
    requestSnapshot,
  };
  syncTicket();
  connect();
})();
