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

// Times are shown in UTC, 24-hour, as the gateway's logs write them:
// never in the browser's zone, which may not be the gateway's.
const pad = (n) => String(n).padStart(2, "0");

function fmtClock(d) {
  return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
}

// fmtTime is an absolute time: 2006-01-02 15:04:05 UTC.
function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " + fmtClock(d) + " UTC";
}

// fmtN writes a count with thousands separators (one formatter: making
// one per call, as toLocaleString does, costs tens of microseconds).
const countFormat = new Intl.NumberFormat("en-US");
function fmtN(n) { return countFormat.format(n); }

function plural(n, one, many) { return fmtN(n) + " " + (n === 1 ? one : many); }

// Text from the network is shown escaped where it could deceive:
// invisible, control and format characters (a bidirectional override, a
// zero-width space, a line break) and spaces other than U+0020 become
// \x1b, \t, \n, \u202e as in Go's strconv.Quote, so that what is shown
// is what was sent, character for character.
const invisible = /[\p{C}\p{Z}\p{Default_Ignorable_Code_Point}]/u;

function escapeChar(ch) {
  const cp = ch.codePointAt(0);
  switch (ch) {
    case "\t": return "\\t";
    case "\n": return "\\n";
    case "\r": return "\\r";
  }
  const hex = cp.toString(16);
  if (cp < 0x80) return "\\x" + hex.padStart(2, "0");
  if (cp <= 0xffff) return "\\u" + hex.padStart(4, "0");
  return "\\U" + hex.padStart(8, "0");
}

// plain matches printable ASCII without a space at either end: shown
// as it is (the common case, checked first).
const plain = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/;

// shown escapes s's invisible characters (spaces at either end too);
// a backslash stays as it is.
function shown(s) {
  if (plain.test(s)) return s;
  let out = "";
  const chars = Array.from(s);
  chars.forEach((ch, i) => {
    if (ch === " " ? i === 0 || i === chars.length - 1 : invisible.test(ch)) out += escapeChar(ch);
    else out += ch;
  });
  return out;
}

// ascii escapes every character of s beyond printable ASCII: an ID with
// a look-alike letter (Cyrillic о for Latin o) differs from the real one
// in this form.
function ascii(s) {
  if (/^[\x20-\x7e]*$/.test(s)) return s;
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0);
    out += cp >= 0x20 && cp < 0x7f ? ch : escapeChar(ch);
  }
  return out;
}

// cell fills td with text, a tooltip and classes.
function cell(td, text, title, cls) {
  td.textContent = text;
  td.title = title || "";
  td.className = cls || "";
}

function numCell(td, n, title, badIfNonZero) {
  cell(td, fmtN(n), title, "num" + (n === 0 ? " zero" : badIfNonZero ? " bad" : ""));
}

function span(cls, text, title) {
  const e = document.createElement("span");
  e.className = cls;
  e.textContent = text;
  if (title) e.title = title;
  return e;
}

// The columns of the node table, in order: data-label names each cell in
// the narrow (phone) layout, where the header is hidden.
const COLUMNS = ["Node", "Address", "State", "Last message", "In", "Out", "Queued", "QoS repeats",
  "Duplicates", "Restarts", "Bad lines", "ACK RTT", "Node T", "Topics", "Extra", "Actions"];
const C = Object.fromEntries(COLUMNS.map((name, i) => [name, i]));

function renderRow(n, tr) {
  if (tr.cells.length === 0) {
    for (const name of COLUMNS) tr.insertCell().dataset.label = name;
  }
  const c = tr.cells;
  const state = n.state || (n.up ? "up" : "down");
  tr.dataset.node = n.id;
  tr.dataset.state = state;
  tr.dataset.mismatch = n.timeout_mismatch ? "true" : "false";

  renderID(n, c[C.Node], tr);
  renderAddress(n, c[C.Address]);

  const st = c[C.State];
  st.textContent = "";
  st.className = "state";
  st.title = n.since ? state + " since " + fmtTime(n.since) : "";
  const badge = span("badge " + state, state);
  if (state === "offline") badge.title = "not connected since the gateway started";
  st.append(badge, span("since", sinceText(n)));
  if (n.reconnects) {
    st.append(span("reconnects", plural(n.reconnects, "reconnect", "reconnects"),
      plural(n.connects, "connection", "connections") + " in all: sockets attached after the first"));
  }

  renderLast(n, c[C["Last message"]]);

  // Messages from the node, and those of them waiting in the gateway's
  // up spool for the broker (shown only when there are some).
  const inCell = c[C.In];
  if (n.spooled || n.spool_refused) {
    let inText = fmtN(n.messages_in) + " (" + fmtN(n.spooled) + " spooled";
    let inTitle = fmtN(n.spooled) + " acknowledged, waiting in the up spool for the broker (" +
      fmtN(n.spooled_bytes) + " bytes)";
    if (n.spool_full) inText += ", full";
    if (n.spool_refused) {
      inText += ", " + fmtN(n.spool_refused) + " refused";
      inTitle += "\n" + fmtN(n.spool_refused) + " not acknowledged because the spool was full (the node repeats them)";
    }
    cell(inCell, inText + ")", inTitle, "num wrap" + (n.spool_full || n.spool_refused ? " bad" : ""));
  } else {
    numCell(inCell, n.messages_in, "");
  }
  const pl = (n.warnings || {}).probable_losses || 0;
  if (pl) {
    cell(c[C.Out], fmtN(n.messages_out) + " ⚠" + fmtN(pl), plural(n.qos_acked, "QoS message", "QoS messages") + " acknowledged\n" + fmtN(pl) +
      " probably lost: the node dropped its link right after acknowledging them, as an original client whose 20-line queue is full does (pace it: docs/GATEWAY.md)", "num warn");
  } else {
    numCell(c[C.Out], n.messages_out, plural(n.qos_acked, "QoS message", "QoS messages") + " acknowledged");
  }
  renderQueue(n, c[C.Queued]);
  numCell(c[C["QoS repeats"]], n.qos_repeats, "");
  numCell(c[C.Duplicates], n.duplicates, n.refused ? fmtN(n.refused) + " refused (queue full)" : "");

  const w = n.warnings || {};
  const amb = (w.ambiguous_repeats || 0) + (w.ambiguous_restarts || 0);
  if (amb) {
    cell(c[C.Restarts], fmtN(n.restarts) + " ⚠" + fmtN(amb),
      "identical first messages (00) the gateway could not classify for sure:\n" +
      fmtN(w.ambiguous_repeats || 0) + " taken for repeats (lost if the node had restarted)\n" +
      fmtN(w.ambiguous_restarts || 0) + " taken for restarts (duplicates if the node had not)", "num warn");
  } else {
    numCell(c[C.Restarts], n.restarts, "");
  }

  const b = n.bad_lines;
  const bad = b.too_long + b.malformed + b.not_utf8;
  numCell(c[C["Bad lines"]], bad, "too long " + b.too_long + ", malformed " + b.malformed + ", not UTF-8 " + b.not_utf8, true);

  if (n.ack_rtt_ms === null || n.ack_rtt_ms === undefined) cell(c[C["ACK RTT"]], "–", "no QoS message acknowledged yet", "num zero");
  else cell(c[C["ACK RTT"]], fmtMs(n.ack_rtt_ms), "", "num");

  const pt = c[C["Node T"]];
  pt.textContent = "";
  pt.className = "num peer-t";
  pt.title = "";
  if (n.peer_timeout_ms === null) {
    pt.textContent = "–";
    pt.className += " zero";
    pt.title = "not known yet: needs two keepalives in a row";
  } else if (n.timeout_mismatch) {
    pt.appendChild(span("mismatch", "⚠ " + fmtMs(n.peer_timeout_ms)));
    pt.title = "differs from the server's T (" + fmtMs(header ? header.timeout_ms : null) +
      "): a node and server with different T make links flap";
  } else {
    pt.textContent = fmtMs(n.peer_timeout_ms);
  }

  renderTopics(n, c[C.Topics]);

  const ex = c[C.Extra];
  if (n.extra) {
    hasExtra = true;
    const parts = Object.keys(n.extra).sort().map((k) => shown(k) + "=" + shown(JSON.stringify(n.extra[k])));
    cell(ex, parts.join(" "), "", "extra");
  } else {
    cell(ex, "", "", "extra");
  }
  ex.dataset.label = "Extra";
  ex.hidden = !hasExtra;
  renderActions(n, c[C.Actions]);
  for (const td of c) if (!td.dataset.label) td.dataset.label = COLUMNS[td.cellIndex];
}

// renderID fills the Node cell: an unfold button, the ID (escaped where
// it holds invisible characters), its escaped ASCII form when it has
// characters beyond ASCII (look-alikes), and its address warnings.
function renderID(n, td, tr) {
  td.className = "node";
  td.title = "";
  let unfold = td.querySelector("button.unfold");
  if (!unfold) {
    // Made once: a button replaced under the pointer loses the click.
    td.textContent = "";
    unfold = button("unfold", "▸", "show the whole last message and the topics' names", () => {
      const o = tr.classList.toggle("open");
      unfold.textContent = o ? "▾" : "▸";
      unfold.setAttribute("aria-expanded", String(o));
    });
    unfold.setAttribute("aria-expanded", "false");
    td.appendChild(unfold);
  }
  while (unfold.nextSibling) unfold.nextSibling.remove();
  const id = span("id", shown(n.id));
  td.appendChild(id);
  if (ascii(n.id) !== n.id) {
    td.appendChild(span("ascii", ascii(n.id),
      "this ID has characters beyond ASCII: its escaped form tells it from a look-alike (Cyrillic о for Latin o, say)"));
  }
  const wa = n.warnings || {};
  if (wa.two_devices || wa.addr_moves || wa.addr_returns || wa.addr_concurrent) {
    const flag = span(wa.two_devices ? "mismatch" : "warn", wa.two_devices ? "⚠ two devices?" : "⚠ moved");
    flag.title = "address changes: " + fmtN(wa.addr_moves || 0) + " moves, " +
      fmtN(wa.addr_returns || 0) + " returns to an address it had left, " +
      fmtN(wa.addr_concurrent || 0) + " claims from another address while up" +
      (wa.two_devices ? "\nit alternates between addresses: two devices may share this ID" : "") +
      (wa.foreign_acked ? "\n" + fmtN(wa.foreign_acked) + " messages acknowledged from another address while it was away (" +
        fmtN(wa.redelivered || 0) + " sent again to it)" : "") +
      (wa.renumbered ? "\n" + fmtN(wa.renumbered) + " messages sent again under a new id after an address change (duplicates if it had them)" : "");
    td.appendChild(flag);
  }
}

// renderAddress fills the Address cell: the address of the node's
// connection, which may break before its port.
function renderAddress(n, td) {
  td.className = "address" + (n.remote ? "" : " zero");
  td.title = n.remote ? (n.up ? "connected from " : "last connected from ") + n.remote : "not connected since the gateway started";
  td.textContent = "";
  if (!n.remote) {
    td.textContent = "–";
    return;
  }
  const a = shown(n.remote);
  const i = a.lastIndexOf(":");
  td.append(a.slice(0, i + 1), document.createElement("wbr"), a.slice(i + 1));
}

// renderLast fills the Last message cell: when, and the message, escaped
// and cut to the cell (whole on hover, and when the row is unfolded).
function renderLast(n, td) {
  td.className = "last";
  td.title = "";
  td.textContent = "";
  const m = n.last_message;
  const when = m ? m.time : n.last_received;
  td.appendChild(span("ago", fmtAgo(when), when ? fmtTime(when) : "no message since the gateway started"));
  if (!m) return;
  const text = shown(m.text);
  // Bytes of the text kept: as many as its characters if it is ASCII.
  const kept = m.bytes === m.text.length ? m.bytes : utf8.encode(m.text).length;
  const cut = m.bytes > kept;
  const pre = span("preview", text, text + (cut ? "\n… (the first " + fmtN(kept) + " bytes of " + fmtN(m.bytes) + ": the whole is on its MQTT up topic)" : ""));
  if (cut) pre.dataset.cut = "true";
  td.appendChild(pre);
}

const utf8 = new TextEncoder();

// renderQueue fills the Queued cell: messages for the node not yet
// delivered.
function renderQueue(n, td) {
  let title = "";
  const parts = [];
  let bad = false;
  if (n.stored === null) {
    // No durable queue: the link's own.
    parts.push(fmtN(n.queued));
    title = fmtN(n.queued) + " waiting to be sent or acknowledged (" + fmtN(n.pending) + " awaiting an ACK)";
  } else {
    parts.push(n.stored || n.queue_full ? fmtN(n.stored) + " stored" : "0");
    title = fmtN(n.stored) + " in the gateway's durable queue (" + fmtN(n.stored_bytes) + " bytes): kept across restarts until the node acknowledges them";
    if (n.queued) {
      parts.push(fmtN(n.queued) + " sending");
      title += "\n" + fmtN(n.queued) + " handed to its link (" + fmtN(n.pending) + " awaiting an ACK)";
    }
    if (n.queue_full) {
      parts.push("full");
      title += "\nqueue full: new messages for the node are dropped until it drains";
      bad = true;
    }
    if (n.dropped) {
      parts.push(fmtN(n.dropped) + " dropped");
      title += "\n" + fmtN(n.dropped) + " messages for the node dropped since the gateway started";
      bad = true;
    }
  }
  td.textContent = "";
  parts.forEach((p, i) => {
    if (i > 0) td.append(" ");
    td.appendChild(span(i === 0 ? "" : "more", p));
  });
  td.title = title;
  const empty = n.queued === 0 && !n.stored && !n.dropped;
  td.className = "num queue" + (bad ? " bad" : empty ? " zero" : "");
}

// renderTopics fills the Topics cell: a button per topic that copies
// its name, and the names themselves when the row is unfolded.
function renderTopics(n, td) {
  td.className = "topics";
  const t = n.topics;
  const key = t ? t.up + "\n" + t.down + "\n" + t.state : "";
  if (td.dataset.key === key) return; // unchanged: keep the buttons under the pointer
  td.dataset.key = key;
  td.textContent = "";
  if (!t) {
    td.textContent = "–";
    td.classList.add("zero");
    return;
  }
  const btns = document.createElement("span");
  btns.className = "copies";
  const names = document.createElement("span");
  names.className = "names";
  for (const [kind, topic] of [["up", t.up], ["down", t.down], ["state", t.state]]) {
    const b = button("copy", kind, topic + "\n(click to copy)", () => copy(b, topic));
    b.dataset.topic = topic;
    btns.appendChild(b);
    // A name may break after a slash.
    const code = document.createElement("code");
    topic.split("/").forEach((part, i) => {
      if (i > 0) code.append("/", document.createElement("wbr"));
      code.append(part);
    });
    names.appendChild(code);
  }
  td.append(btns, names);
}

// copy puts text on the clipboard and says so on b; where the browser
// does not allow it (a page over plain HTTP beyond localhost), the row
// unfolds with the name selected, for Ctrl+C.
async function copy(b, text) {
  const label = b.textContent;
  try {
    await navigator.clipboard.writeText(text);
    b.textContent = "copied";
    b.classList.add("done");
  } catch (e) {
    const tr = b.closest("tr");
    if (!tr.classList.contains("open")) tr.querySelector("button.unfold").click();
    const code = Array.from(tr.querySelectorAll(".names code")).find((c) => c.textContent === text);
    if (code) getSelection().selectAllChildren(code);
    b.textContent = "Ctrl+C";
  }
  setTimeout(() => { b.textContent = label; b.classList.remove("done"); }, 1500);
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

function forgetNode(id) { act("api/nodes/" + encodeURIComponent(id) + "/forget", shown(id) + " forgotten"); }

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
      for (const name of ["Node", "Address", "TLS", "First claim", "Last claim", "Attempts", "Actions"]) tr.insertCell().dataset.label = name;
      const c = tr.cells[6];
      c.className = "actions";
      c.dataset.label = "Actions";
      if (canAct("approve")) c.appendChild(button("approve", "approve", "let this node in", () => act("api/pending/" + encodeURIComponent(n.id) + "/approve", shown(n.id) + " approved")));
      if (canAct("deny")) c.appendChild(button("deny", "deny", "refuse this ID without listing it again", (b) => armed(b, () => act("api/pending/" + encodeURIComponent(n.id) + "/deny", shown(n.id) + " denied"))));
      pendingRows.set(n.id, tr);
    }
    body.appendChild(tr); // in the list's order
    const c = tr.cells;
    cell(c[0], shown(n.id), ascii(n.id) !== n.id ? "escaped: " + ascii(n.id) : "", "id");
    cell(c[1], shown(n.remote), "", "address");
    cell(c[2], n.tls ? "yes" : "no", "", "");
    cell(c[3], fmtAgo(n.first), fmtTime(n.first), "ago");
    cell(c[4], fmtAgo(n.last), fmtTime(n.last), "ago");
    numCell(c[5], n.attempts, "");
    c[6].hidden = !acts;
  }
}

function tdNode(td) { return td.parentElement.dataset.node; }

// sinceText is how long a node has been in its state: an offline node
// has not connected since the gateway started.
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
  $("gw-name").textContent = h.name || "";
  $("gw-name").hidden = !h.name;
  $("version").textContent = h.version || "";
  $("version").hidden = !h.version;
  document.title = (h.name ? h.name + " · " : "") + h.title;
  $("timeout").textContent = h.timeout_ms ? fmtMs(h.timeout_ms) : "–";
  // The nodes up of the table's rows (offline ones included), as the
  // pager counts them.
  $("nodes-up").textContent = fmtN(h.nodes_up) + " of " + fmtN(h.nodes_total);
  const other = [];
  if (h.nodes_down) other.push(fmtN(h.nodes_down) + " down");
  if (h.nodes_offline) other.push(fmtN(h.nodes_offline) + " offline");
  $("nodes-other").textContent = other.join(" · ");
  $("nodes-other").title = h.nodes_offline ? "offline: not connected since the gateway started" : "";
  const hs = h.handshakes;
  $("rejected").textContent = fmtN(hs.rejected);
  const reasons = Object.keys(hs.by_reason).sort().map((r) => r.replace(/_/g, " ") + ": " + hs.by_reason[r]);
  if (hs.unknown_id) reasons.push("unknown IDs (rejected only if strict): " + hs.unknown_id);
  $("rejected").title = fmtN(hs.accepted) + " connections accepted, " + fmtN(hs.ok) + " handshakes\n" + reasons.join("\n");
  renderBroker(h.mqtt);
  $("updated").textContent = fmtClock(new Date(now())) + " UTC";
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
  if (b.since) title += "\n" + (b.connected ? "connected" : "not connected") + " since " + fmtTime(b.since);
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
    let text = fmtClock(new Date(e.time)) + "  " + shown(e.id) + " " + e.kind;
    if (e.reason) text += " (" + shown(e.reason) + ")";
    if (e.remote) text += " from " + shown(e.remote);
    if (e.detail) text += ": " + shown(e.detail);
    li.textContent = text;
    li.title = fmtTime(e.time);
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
    for (const tr of rows.values()) tr.cells[C.Extra].hidden = !hasExtra;
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
    tr.cells[C.State].querySelector(".since").textContent = sinceText(n);
    const ago = tr.cells[C["Last message"]].querySelector(".ago");
    if (ago) ago.textContent = fmtAgo(n.last_message ? n.last_message.time : n.last_received);
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
  $("send-node").textContent = shown(id);
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
      out.textContent = "queued for " + shown(id);
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
