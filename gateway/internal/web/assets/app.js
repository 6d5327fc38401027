// Tether status page: renders /events (server-sent events) into the node
// table, one page of it at a time: the server filters, sorts and pages the
// nodes (the query: q, state, offset, limit) and sends only the rows of the
// page that changed. Every value from the server goes in through
// textContent: node IDs and reasons come from the network and are never
// parsed as HTML.
"use strict";

const nodes = new Map();   // id -> node, as last received (this page's)
const rows = new Map();    // id -> <tr>
let header = null;
let skew = 0;              // server clock minus browser clock, ms
let lastSeq = 0;           // newest event shown
let hasExtra = false;
let es = null;             // the event stream
let counts = { total: 0, matched: 0 };

const $ = (id) => document.getElementById(id);
const tbody = document.querySelector("#nodes tbody");

// The page's query, kept in the address bar so that a reload keeps it.
const params = new URLSearchParams(location.search);
const view = {
  q: params.get("q") || "",
  down: params.get("state") === "down,offline",
  offset: Math.max(0, parseInt(params.get("offset"), 10) || 0),
  limit: [50, 100, 200, 500].includes(parseInt(params.get("limit"), 10)) ? parseInt(params.get("limit"), 10) : 100,
};

function viewParams() {
  const p = new URLSearchParams();
  if (view.q) p.set("q", view.q);
  if (view.down) p.set("state", "down,offline");
  if (view.offset) p.set("offset", String(view.offset));
  if (view.limit !== 100) p.set("limit", String(view.limit));
  return p;
}

function now() { return Date.now() + skew; }

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 10) return ms.toFixed(1) + " ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
}

function fmtAgo(iso) {
  if (!iso) return "never";
  const s = Math.max(0, Math.floor((now() - Date.parse(iso)) / 1000));
  if (s < 1) return "just now";
  if (s < 60) return s + " s ago";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min " + (s % 60) + " s ago";
  const h = Math.floor(m / 60);
  if (h < 48) return h + " h " + (m % 60) + " min ago";
  return Math.floor(h / 24) + " d ago";
}

function fmtTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function fmtN(n) { return n.toLocaleString("en-US"); }

// cell fills td with text, a tooltip and classes.
function cell(td, text, title, cls) {
  td.textContent = text;
  td.title = title || "";
  td.className = cls || "";
}

function numCell(td, n, title, badIfNonZero) {
  cell(td, fmtN(n), title, "num" + (n === 0 ? " zero" : badIfNonZero ? " bad" : ""));
}

const COLS = 16;

function renderRow(n, tr) {
  if (tr.cells.length === 0) {
    for (let i = 0; i < COLS; i++) tr.insertCell();
  }
  const c = tr.cells;
  const state = n.state || (n.up ? "up" : "down");
  tr.dataset.node = n.id;
  tr.dataset.state = state;
  tr.dataset.mismatch = n.timeout_mismatch ? "true" : "false";

  cell(c[0], n.id, n.remote ? "last address: " + n.remote : "", "id");
  const wa = n.warnings || {};
  if (wa.two_devices || wa.addr_moves || wa.addr_returns || wa.addr_concurrent) {
    const flag = document.createElement("span");
    flag.className = wa.two_devices ? "mismatch" : "warn";
    flag.textContent = wa.two_devices ? " ⚠ two devices?" : " ⚠ moved";
    c[0].appendChild(flag);
    c[0].title += (c[0].title ? "\n" : "") + "address changes: " + fmtN(wa.addr_moves || 0) + " moves, " +
      fmtN(wa.addr_returns || 0) + " returns to an address it had left, " +
      fmtN(wa.addr_concurrent || 0) + " claims from another address while up" +
      (wa.two_devices ? "\nit alternates between addresses: two devices may share this ID" : "") +
      (wa.foreign_acked ? "\n" + fmtN(wa.foreign_acked) + " messages acknowledged from another address while it was away (" +
        fmtN(wa.redelivered || 0) + " sent again to it)" : "") +
      (wa.renumbered ? "\n" + fmtN(wa.renumbered) + " messages sent again under a new id after an address change (duplicates if it had them)" : "");
  }
  c[1].textContent = "";
  c[1].className = "state";
  const badge = document.createElement("span");
  badge.className = "badge " + state;
  badge.textContent = state;
  if (state === "offline") badge.title = "not connected since the gateway started";
  c[1].appendChild(badge);
  cell(c[2], sinceText(n), fmtTime(n.since), "ago since");
  numCell(c[3], n.reconnects, n.connects + " connections in all");
  cell(c[4], fmtAgo(n.last_received), fmtTime(n.last_received), "ago last");
  // Messages from the node, and those of them waiting in the gateway's
  // up spool for the broker (shown only when there are some).
  if (n.spooled || n.spool_refused) {
    let inText = fmtN(n.messages_in) + " (" + fmtN(n.spooled) + " spooled";
    let inTitle = fmtN(n.spooled) + " acknowledged, waiting in the up spool for the broker (" +
      fmtN(n.spooled_bytes) + " bytes)";
    if (n.spool_full) inText += ", full";
    if (n.spool_refused) {
      inText += ", " + fmtN(n.spool_refused) + " refused";
      inTitle += "\n" + fmtN(n.spool_refused) + " not acknowledged because the spool was full (the node repeats them)";
    }
    cell(c[5], inText + ")", inTitle, "num" + (n.spool_full || n.spool_refused ? " bad" : ""));
  } else {
    numCell(c[5], n.messages_in, "");
  }
  const pl = (n.warnings || {}).probable_losses || 0;
  if (pl) {
    cell(c[6], fmtN(n.messages_out) + " ⚠" + fmtN(pl), fmtN(n.qos_acked) + " qos messages acknowledged\n" + fmtN(pl) +
      " probably lost: the node dropped its link right after acknowledging them, as an original client whose 20-line queue is full does (pace it: docs/GATEWAY.md)", "num warn");
  } else {
    numCell(c[6], n.messages_out, fmtN(n.qos_acked) + " qos messages acknowledged");
  }
  numCell(c[7], n.qos_repeats, "");
  numCell(c[8], n.duplicates, n.refused ? fmtN(n.refused) + " refused (queue full)" : "");
  let q = n.queued + (n.stored === null ? "" : " + " + fmtN(n.stored) + " stored");
  let qTitle = fmtN(n.pending) + " awaiting ACK";
  if (n.stored !== null) qTitle += "\n" + fmtN(n.stored_bytes) + " bytes in the durable store";
  if (n.queue_full) {
    q += " (full)";
    qTitle += "\nqueue full: new messages for the node are dropped until it drains";
  }
  if (n.dropped) {
    q += ", " + fmtN(n.dropped) + " dropped";
    qTitle += "\n" + fmtN(n.dropped) + " messages for the node dropped since the gateway started";
  }
  const qCls = n.queue_full || n.dropped ? " bad" : (n.queued === 0 && !n.stored ? " zero" : "");
  cell(c[9], q, qTitle, "num queue" + qCls);
  cell(c[10], fmtMs(n.ack_rtt_ms), "", "num");
  const w = n.warnings || {};
  const amb = (w.ambiguous_repeats || 0) + (w.ambiguous_restarts || 0);
  if (amb) {
    cell(c[11], fmtN(n.restarts) + " ⚠" + fmtN(amb),
      "identical first messages (00) the gateway could not classify for sure:\n" +
      fmtN(w.ambiguous_repeats || 0) + " taken for repeats (lost if the node had restarted)\n" +
      fmtN(w.ambiguous_restarts || 0) + " taken for restarts (duplicates if the node had not)", "num warn");
  } else {
    numCell(c[11], n.restarts, "");
  }

  c[12].textContent = "";
  c[12].className = "num peer-t";
  c[12].title = "";
  if (n.peer_timeout_ms === null) {
    c[12].textContent = "–";
    c[12].title = "not known yet: needs two keepalives in a row";
  } else if (n.timeout_mismatch) {
    const flag = document.createElement("span");
    flag.className = "mismatch";
    flag.textContent = "⚠ " + fmtMs(n.peer_timeout_ms);
    c[12].appendChild(flag);
    c[12].title = "differs from the server's T (" + fmtMs(header ? header.timeout_ms : null) +
      "): a node and server with different T make links flap";
  } else {
    c[12].textContent = fmtMs(n.peer_timeout_ms);
  }

  const b = n.bad_lines;
  const bad = b.too_long + b.malformed + b.not_utf8;
  numCell(c[13], bad, "too long " + b.too_long + ", malformed " + b.malformed + ", not UTF-8 " + b.not_utf8, true);

  if (n.extra) {
    hasExtra = true;
    const parts = Object.keys(n.extra).sort().map((k) => k + "=" + JSON.stringify(n.extra[k]));
    cell(c[14], parts.join(" "), "", "extra");
  } else {
    cell(c[14], "", "", "extra");
  }
  c[14].hidden = !hasExtra;
  renderActions(n, c[15]);
}

// canAct tells whether the page offers action a: the server offers it
// and requests carry credentials (actions are refused without them).
function canAct(a) {
  return header !== null && header.auth && header.actions.includes(a);
}

function renderActions(n, td) {
  const send = canAct("send");
  const forget = canAct("forget") && n.state !== "up";
  td.className = "actions";
  td.hidden = !canAct("send") && !canAct("forget");
  const has = (cls) => td.querySelector("button." + cls) !== null;
  if (send !== has("send") || forget !== has("forget")) {
    td.textContent = "";
    if (send) td.appendChild(button("send", "send…", "write a message to this node (queued durably, delivered once)",
      () => openSend(tdNode(td))));
    if (forget) td.appendChild(button("forget", "forget", "remove this node and what is queued for it (click twice)",
      (b) => armed(b, () => forgetNode(tdNode(td)))));
  }
}

function button(cls, text, title, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = text;
  b.title = title;
  b.addEventListener("click", () => onClick(b));
  return b;
}

// armed runs act on a second click within 5 s: a removal is not undone.
function armed(b, act) {
  if (b.dataset.armed === "true") {
    b.dataset.armed = "false";
    b.textContent = b.dataset.label;
    act();
    return;
  }
  b.dataset.label = b.textContent;
  b.dataset.armed = "true";
  b.textContent = "sure?";
  setTimeout(() => {
    if (b.dataset.armed === "true") { b.dataset.armed = "false"; b.textContent = b.dataset.label; }
  }, 5000);
}

// act posts an action and shows its outcome.
async function act(url, what) {
  const out = $("action-result");
  try {
    const resp = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    const body = await resp.json().catch(() => ({}));
    out.textContent = resp.ok ? what : what + " refused: " + (body.error || resp.statusText);
    out.className = resp.ok ? "ok" : "bad";
  } catch (e) {
    out.textContent = what + " failed: " + e;
    out.className = "bad";
  }
}

function forgetNode(id) { act("api/nodes/" + encodeURIComponent(id) + "/forget", id + " forgotten"); }

// The approval list: rows kept by ID, so that a button is not replaced
// under the pointer.
const pendingRows = new Map();

function renderPending(p) {
  $("pending-box").hidden = !p;
  if (!p) return;
  $("pending-count").textContent = p.total ? "(" + fmtN(p.total) + ")" : "";
  $("pending-empty").hidden = p.total > 0;
  $("pending-dropped").hidden = !p.dropped;
  $("pending-dropped").textContent = fmtN(p.dropped) + " IDs dropped from the list because it was full (the least recent first).";
  const acts = canAct("approve") || canAct("deny");
  $("pending-actions-head").hidden = !acts;
  const body = document.querySelector("#pending tbody");
  const keep = new Set(p.nodes.map((n) => n.id));
  for (const [id, tr] of pendingRows) {
    if (!keep.has(id)) { tr.remove(); pendingRows.delete(id); }
  }
  for (const n of p.nodes) {
    let tr = pendingRows.get(n.id);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.node = n.id;
      for (let i = 0; i < 7; i++) tr.insertCell();
      const c = tr.cells[6];
      c.className = "actions";
      if (canAct("approve")) c.appendChild(button("approve", "approve", "let this node in", () => act("api/pending/" + encodeURIComponent(n.id) + "/approve", n.id + " approved")));
      if (canAct("deny")) c.appendChild(button("deny", "deny", "refuse this ID without listing it again", (b) => armed(b, () => act("api/pending/" + encodeURIComponent(n.id) + "/deny", n.id + " denied"))));
      pendingRows.set(n.id, tr);
    }
    body.appendChild(tr); // in the list's order
    const c = tr.cells;
    cell(c[0], n.id, "", "id");
    cell(c[1], n.remote, "", "");
    cell(c[2], n.tls ? "yes" : "no", "", "");
    cell(c[3], fmtAgo(n.first), fmtTime(n.first), "ago");
    cell(c[4], fmtAgo(n.last), fmtTime(n.last), "ago");
    numCell(c[5], n.attempts, "");
    c[6].hidden = !acts;
  }
}

function tdNode(td) { return td.parentElement.dataset.node; }

// sinceText is the Since cell: an offline node has not connected since
// the gateway started.
function sinceText(n) {
  return n.state === "offline" ? "not since start" : fmtAgo(n.since);
}

// upsert renders node n into its row, making the row if the page has
// none yet (it is placed by order()).
function upsert(n) {
  const old = nodes.get(n.id);
  nodes.set(n.id, n);
  let tr = rows.get(n.id);
  if (!tr) {
    tr = document.createElement("tr");
    rows.set(n.id, tr);
  }
  renderRow(n, tr);
  if (old && (old.up !== n.up || old.state !== n.state)) {
    tr.classList.remove("flash");
    void tr.offsetWidth; // restart the animation
    tr.classList.add("flash");
  }
}

// order puts the page's rows in the order of ids, dropping the others.
function order(ids) {
  const keep = new Set(ids);
  for (const [id, tr] of rows) {
    if (!keep.has(id)) { tr.remove(); rows.delete(id); nodes.delete(id); }
  }
  const frag = document.createDocumentFragment();
  for (const id of ids) {
    const tr = rows.get(id);
    if (tr) frag.appendChild(tr);
  }
  tbody.appendChild(frag);
}

function renderPager() {
  const { total, matched } = counts;
  const from = matched === 0 ? 0 : Math.min(view.offset + 1, matched);
  const to = Math.min(view.offset + view.limit, matched);
  let text = fmtN(from) + "–" + fmtN(to) + " of " + fmtN(matched);
  if (matched !== total) text += " matching (" + fmtN(total) + " nodes)";
  else text += " nodes";
  $("range").textContent = text;
  $("prev").disabled = view.offset === 0;
  $("next").disabled = view.offset + view.limit >= matched;
}

function renderHeader(h) {
  header = h;
  skew = Date.parse(h.time) - Date.now();
  $("title").textContent = h.title;
  document.title = h.title + " nodes";
  $("timeout").textContent = h.timeout_ms ? fmtMs(h.timeout_ms) : "–";
  $("nodes-up").textContent = h.nodes_up + " / " + h.nodes_total;
  const hs = h.handshakes;
  $("rejected").textContent = fmtN(hs.rejected);
  const reasons = Object.keys(hs.by_reason).sort().map((r) => r.replace(/_/g, " ") + ": " + hs.by_reason[r]);
  if (hs.unknown_id) reasons.push("unknown IDs (rejected only if strict): " + hs.unknown_id);
  $("rejected").title = fmtN(hs.accepted) + " connections accepted, " + fmtN(hs.ok) + " handshakes\n" + reasons.join("\n");
  renderBroker(h.mqtt);
  $("updated").textContent = new Date().toLocaleTimeString();
  $("actions-head").hidden = !canAct("send") && !canAct("forget");
  $("auth-note").hidden = h.auth || h.actions.length === 0;
  renderPending(h.pending);
}

function renderBroker(b) {
  $("mqtt-box").hidden = !b;
  if (!b) return;
  const dd = $("mqtt");
  dd.textContent = b.connected ? "connected" : "not connected";
  dd.className = b.connected ? "" : "bad";
  let title = b.name;
  if (b.since) title += "\n" + (b.connected ? "connected" : "not connected") + " since " + new Date(b.since).toLocaleString();
  if (b.error) title += "\n" + b.error;
  dd.title = title;
}

function addEvents(evs) {
  const list = $("events");
  for (const e of evs) {
    if (e.seq <= lastSeq) continue;
    lastSeq = e.seq;
    const li = document.createElement("li");
    li.className = "kind-" + e.kind;
    let text = new Date(e.time).toLocaleTimeString() + "  " + e.id + " " + e.kind;
    if (e.reason) text += " (" + e.reason + ")";
    if (e.remote) text += " from " + e.remote;
    if (e.detail) text += ": " + e.detail;
    li.textContent = text;
    list.insertBefore(li, list.firstChild);
  }
  while (list.children.length > 100) list.removeChild(list.lastChild);
}

function refreshNote() {
  let mismatch = false;
  for (const n of nodes.values()) if (n.timeout_mismatch) mismatch = true;
  $("mismatch-note").hidden = !mismatch;
  $("empty").hidden = counts.total > 0;
  $("no-match").hidden = counts.total === 0 || counts.matched > 0;
  if ($("extra-head").hidden === hasExtra) {
    $("extra-head").hidden = !hasExtra;
    for (const tr of rows.values()) tr.cells[14].hidden = !hasExtra;
  }
  renderPager();
}

function onStatus(st) {
  renderHeader(st);
  counts = { total: st.total, matched: st.matched };
  for (const n of st.nodes) upsert(n);
  order(st.nodes.map((n) => n.id));
  addEvents(st.events);
  refreshNote();
  // A page past the end (nodes were forgotten): go to the last one.
  if (st.nodes.length === 0 && st.matched > 0 && view.offset > 0) {
    view.offset = Math.max(0, Math.floor((st.matched - 1) / view.limit) * view.limit);
    reconnect();
  }
}

function onUpdate(up) {
  renderHeader(up);
  counts = { total: up.total, matched: up.matched };
  for (const n of up.nodes) upsert(n);
  if (up.ids) order(up.ids);
  addEvents(up.events);
  refreshNote();
}

// Relative times age between updates.
function tick() {
  for (const [id, tr] of rows) {
    const n = nodes.get(id);
    if (!n) continue;
    tr.cells[2].textContent = sinceText(n);
    tr.cells[4].textContent = fmtAgo(n.last_received);
  }
}

function connect() {
  const live = $("live");
  const p = viewParams();
  const qs = p.toString();
  history.replaceState(null, "", qs ? "?" + qs : location.pathname);
  es = new EventSource("events" + (qs ? "?" + qs : ""));
  es.addEventListener("status", (e) => onStatus(JSON.parse(e.data)));
  es.addEventListener("update", (e) => onUpdate(JSON.parse(e.data)));
  es.onopen = () => { live.dataset.state = "live"; live.textContent = "live"; };
  es.onerror = () => {
    live.dataset.state = "lost";
    live.textContent = es.readyState === EventSource.CLOSED ? "disconnected (reload the page)" : "reconnecting…";
  };
}

// reconnect watches the page that view now selects.
function reconnect() {
  if (es) es.close();
  $("live").dataset.state = "connecting";
  $("live").textContent = "connecting…";
  connect();
}

// The send dialog.
function openSend(id) {
  const d = $("send-dialog");
  d.dataset.node = id;
  $("send-node").textContent = id;
  $("send-payload").value = "";
  $("send-result").textContent = "";
  $("send-result").className = "";
  d.showModal();
  $("send-payload").focus();
}

async function submitSend(ev) {
  ev.preventDefault();
  const d = $("send-dialog");
  const id = d.dataset.node;
  const payload = $("send-payload").value;
  const out = $("send-result");
  try {
    const resp = await fetch("api/nodes/" + encodeURIComponent(id) + "/send", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ payload }),
    });
    const body = await resp.json().catch(() => ({}));
    if (resp.ok) {
      out.textContent = "queued for " + id;
      out.className = "ok";
      $("send-payload").value = "";
    } else {
      out.textContent = "refused: " + (body.error || resp.statusText);
      out.className = "bad";
    }
  } catch (e) {
    out.textContent = "failed: " + e;
    out.className = "bad";
  }
}

let searchTimer = null;
$("filter").value = view.q;
$("down-only").checked = view.down;
$("page-size").value = String(view.limit);
$("filter").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    view.q = $("filter").value.trim();
    view.offset = 0;
    reconnect();
  }, 250);
});
$("down-only").addEventListener("change", () => {
  view.down = $("down-only").checked;
  view.offset = 0;
  reconnect();
});
$("page-size").addEventListener("change", () => {
  view.limit = parseInt($("page-size").value, 10);
  view.offset = 0;
  reconnect();
});
$("prev").addEventListener("click", () => {
  view.offset = Math.max(0, view.offset - view.limit);
  reconnect();
});
$("next").addEventListener("click", () => {
  view.offset += view.limit;
  reconnect();
});
$("send-form").addEventListener("submit", submitSend);
$("send-cancel").addEventListener("click", () => $("send-dialog").close());
setInterval(tick, 1000);
connect();
