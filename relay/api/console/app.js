// pdns-relay console: sign-in, then a live view pushed by the relay as
// Server-Sent Events (/console/api/events). Every value from the relay is
// put into the page as text (textContent), never as HTML: names come from
// DNS traffic and may hold markup.
"use strict";

const $ = (id) => document.getElementById(id);
const pages = ["overview", "sensors", "partners"];
const sections = pages.concat(["policy"]);
let session = null;   // {user, role, csrf}
let events = null;    // the EventSource
let prev = null;      // the state before the last one (rates)

function say(text) { $("message").textContent = text; }

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

// Renders items as the rows of tbody, changing only the cells that differ
// (a link or a button under the pointer is not swapped every second).
function fill(tbody, items, render) {
  const rows = items.map((it) => {
    const tr = document.createElement("tr");
    render(tr, it);
    return tr;
  });
  if (tbody.rows.length !== rows.length) {
    tbody.replaceChildren(...rows);
    return;
  }
  rows.forEach((tr, i) => {
    const old = tbody.rows[i], cells = Array.from(tr.cells), olds = Array.from(old.cells);
    if (olds.length !== cells.length) {
      old.replaceWith(tr);
      return;
    }
    cells.forEach((td, j) => {
      if (olds[j].outerHTML !== td.outerHTML) old.replaceChild(td, olds[j]);
    });
  });
}

function list(dl, pairs) {
  const out = [];
  for (const [k, v] of pairs) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    out.push(dt, dd);
  }
  dl.replaceChildren(...out);
}

const num = (n) => (n === undefined || n === null) ? "–" : Number(n).toLocaleString("en");
// a latency bucket's bound in ms (the last 10 s); "–" when nothing was written
const ms = (v) => v === null || v === undefined ? "–"
                : typeof v === "string" ? v + " ms" : "≤ " + (v < 1 ? v.toFixed(1) : v.toFixed(0)) + " ms";
const link = (x) => x.link === "none" ? "file only" : x.link;
const rate = (n) => (n === null) ? "–" : n.toFixed(n < 10 ? 1 : 0);

function ago(s) {
  if (s === null) return "never";
  if (s < 2) return "now";
  if (s < 120) return Math.round(s) + " s ago";
  if (s < 7200) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

function words(obj) {
  const parts = Object.entries(obj || {}).map(([k, v]) => k + " " + num(v));
  return parts.length ? parts.join(", ") : "none";
}

// Per-sensor records/s, from two states a second or so apart.
function sensorRates(st, dt) {
  const out = {};
  for (const s of st.sensors) {
    const p = prev && prev.sensors.find((x) => x.name === s.name);
    out[s.name] = p && dt > 0 ? Math.max(0, (s.records - p.records) / dt) : null;
  }
  return out;
}

// The relay's last hour (GET /console/api/history): rates between samples.
let historyTimer = null;
async function drawHistory() {
  const [r, body] = await getJSON("/console/api/history");
  if (!r.ok) return;
  const xs = body.samples;
  const rates = (k) => xs.slice(1).map((x, i) =>
    Math.max(0, (x[k] - xs[i][k]) / Math.max(0.001, (x.at_ms - xs[i].at_ms) / 1000)));
  const taken = rates("records"), sent = rates("sent");
  const max = Math.max(1, ...taken, ...sent);
  const line = (vals, cls) => {
    const pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    const pts = vals.map((v, i) => {
      const x = vals.length > 1 ? (i * 600) / (vals.length - 1) : 0;
      return x.toFixed(1) + "," + (118 - (v * 110) / max).toFixed(1);
    });
    pl.setAttribute("points", pts.join(" "));
    if (cls) pl.setAttribute("class", cls);
    return pl;
  };
  $("chart").replaceChildren(line(taken, ""), line(sent, "sent"));
  $("chart-peak").textContent = xs.length < 2 ? "collecting: the first samples come within 10 s"
    : "peak " + rate(Math.max(0, ...taken)) + " records/s taken, " +
      rate(Math.max(0, ...sent)) + " sent, over the last " +
      Math.round((xs[xs.length - 1].at_ms - xs[0].at_ms) / 60000) + " min";
}

function render(st) {
  $("relay-id").textContent = st.relay_id;
  $("version").textContent = st.version;
  $("uptime").textContent = ago(st.uptime_s).replace(" ago", "");
  const dt = prev ? (st.time_ms - prev.time_ms) / 1000 : 0;
  const rates = sensorRates(st, dt);
  let total = null;
  const bySource = [];
  for (const [src, n] of Object.entries(st.ingest.records)) {
    const p = prev ? prev.ingest.records[src] : undefined;
    if (p === undefined || dt <= 0) continue;
    const r = Math.max(0, (n - p) / dt);
    total = (total || 0) + r;
    if (n > 0) bySource.push(src + " " + rate(r));
  }
  $("rate-total").textContent = rate(total);
  $("rate-sources").textContent = bySource.join(", ");
  const s = st.store;
  list($("store"), s.enabled ? [["link", s.connected ? "up" : "down"], ["stored", num(s.stored)],
                                ["triples", num(s.triples)], ["names", num(s.names)],
                                ["waiting", num(s.waiting)], ["batches", num(s.batches)],
                                ["write p50 / p99", ms(s.write_p50_ms) + " / " + ms(s.write_p99_ms)],
                                ["errors", num(s.errors)], ["set aside", num(s.set_aside)]]
                             : [["store", "off"]]);
  const m = st.mixer;
  const mp = m.enabled ? [["pool", num(m.pool_triples) + " triples"], ["in", num(m.inserted)],
                          ["out", num(m.released)], ["batches", num(m.batches)]] : [["mixer", "off"]];
  if (m.last_batch) {
    mp.push(["last batch", num(m.last_batch.size) + " triples"],
            ["from sensors", num(m.last_batch.sensors)],
            ["entropy H", m.last_batch.entropy.toFixed(2) + " bits"],
            ["2^H", m.last_batch.anonymity_set.toFixed(1)],
            ["min-entropy", m.last_batch.min_entropy.toFixed(2) + " bits"]);
  }
  list($("mixer"), mp);
  const rej = Object.entries(st.ingest.rejected).map(([k, v]) => [k, num(v)]);
  rej.push(["error lines", num(st.ingest.error_lines)]);
  list($("rejects"), rej);
  fill($("overview-sensors").tBodies[0], st.sensors, (tr, x) => {
    cell(tr, x.name);
    cell(tr, rate(rates[x.name]), "num");
    cell(tr, num(x.records), "num");
    cell(tr, num(x.sessions), "num");
  });
  fill($("sensor-table").tBodies[0], st.sensors, (tr, x) => {
    cell(tr, x.name);
    cell(tr, x.uuid, "name");
    cell(tr, x.org || "–");
    cell(tr, num(x.sessions), "num");
    cell(tr, num(x.records), "num");
    cell(tr, rate(rates[x.name]), "num");
    cell(tr, num(x.error_lines), "num");
    cell(tr, num(x.rejected), "num");
    cell(tr, x.last_seen_ms ? ago((st.time_ms - x.last_seen_ms) / 1000) : "not since the start");
    cell(tr, x.sample || "–", "name sample");
  });
  fill($("overview-partners").tBodies[0], st.partners, (tr, x) => {
    cell(tr, x.name);
    cell(tr, link(x), "link-" + x.link);
    cell(tr, num(x.outbox), "num");
    cell(tr, num(x.delayed), "num");
    cell(tr, num(x.sent), "num");
    cell(tr, num(x.batches), "num");
    cell(tr, words(x.denied));
  });
  fill($("partner-table").tBodies[0], st.partners, (tr, x) => {
    cell(tr, x.name);
    cell(tr, x.enabled ? "enabled" : "disabled: nothing is sent");
    cell(tr, x.description || "–");
    cell(tr, x.tlp || "–");
    cell(tr, x.version, "name");
    cell(tr, num(x.sent), "num");
    cell(tr, num(x.batches), "num");
    cell(tr, num(x.seq), "num");
    cell(tr, link(x), "link-" + x.link);
    cell(tr, num(x.outbox), "num");
    cell(tr, num(x.delayed) + (x.rate_held ? " (+" + num(x.rate_held) + " held by the rate)" : ""), "num");
    cell(tr, words(x.denied));
    const a = document.createElement("a");
    a.href = "#policy/" + encodeURIComponent(x.name);
    a.textContent = (session && session.role !== "viewer" ? "edit" : "read") + " the policy";
    cell(tr, "").appendChild(a);
  });
  if (editing && editing.name) {
    const p = st.partners.find((x) => x.name === editing.name);
    if (p) $("policy-in-force").textContent = p.version;
    if (p && editing.applied && p.batch_version === editing.applied)
      $("policy-result").textContent = "Applied: version " + p.version +
          " is in force and the partner's batch " + p.seq + " carried it.";
    else if (p && editing.applied && p.version === editing.applied)
      $("policy-result").textContent = "Applied: the relay runs version " + p.version +
          "; the partner's next batch will carry it.";
  }
  prev = st;
}

// A policy in words (policy_describe): a heading and a list per section.
const wordSections = {gets: "Gets", never: "Never gets", thresholds: "Thresholds",
                      timing: "Timing", identifiers: "Identifiers and fields",
                      delivery: "Delivery"};

function wordsBlock(list) {
  const out = [];
  let ul = null, last = null;
  for (const w of list) {
    if (w.section !== last) {
      const h = document.createElement("h4");
      h.textContent = wordSections[w.section] || w.section;
      ul = document.createElement("ul");
      out.push(h, ul);
      last = w.section;
    }
    const li = document.createElement("li");
    li.textContent = w.text;
    ul.appendChild(li);
  }
  return out;
}

async function loadWords() {
  const [r, body] = await getJSON("/console/api/policies");
  if (!r.ok) { $("partner-words").textContent = body.error || "no policies here"; return; }
  $("partner-words").replaceChildren(...body.partners.map((p) => {
    const sec = document.createElement("section");
    sec.className = "words";
    sec.id = "words-" + p.name;
    const h = document.createElement("h3");
    h.textContent = "Partner " + p.name + (p.pending ? " (a change waits for approval)" : "");
    sec.append(h, ...wordsBlock(p.words));
    return sec;
  }));
}

function show(route) {
  let page = route, arg = "";
  const slash = route.indexOf("/");
  if (slash >= 0) { page = route.slice(0, slash); arg = decodeURIComponent(route.slice(slash + 1)); }
  if (!sections.includes(page) || (page === "policy" && !arg)) page = "overview";
  for (const p of sections) $(p).hidden = p !== page;
  for (const p of pages) {
    const a = $("nav-" + p);
    if (p === page || (page === "policy" && p === "partners")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = "pdns-relay console: " + page + (arg ? " " + arg : "");
  if (page === "policy") openPolicy(arg);
  if (page === "partners") loadWords();
}

// ---- the policy editor ----------------------------------------------------
let editing = null;   // {name, inForce: text, ok, applied}
let checkTimer = null;

async function getJSON(path) {
  const r = await fetch(path, {credentials: "same-origin"});
  let body = {};
  try { body = await r.json(); } catch (e) { /* no body */ }
  return [r, body];
}

function messages(list) {
  const ul = $("policy-messages");
  if (!list.length) {
    const li = document.createElement("li");
    li.className = "ok";
    li.textContent = "No errors.";
    ul.replaceChildren(li);
    return;
  }
  ul.replaceChildren(...list.map((m) => {
    const li = document.createElement("li");
    li.className = m.warning ? "warning" : "error";
    li.textContent = (m.line ? "line " + m.line + ", column " + m.column + ": " : "") +
                     (m.warning ? "warning: " : "") + m.text;
    return li;
  }));
}

function changes(list) {
  const ul = $("policy-changes");
  const items = !list ? ["(the text has errors: fix them to see what changes)"]
              : list.length ? list : ["nothing that matters to the partner"];
  ul.replaceChildren(...items.map((t) => {
    const li = document.createElement("li");
    li.textContent = t;
    return li;
  }));
}

function canApply() {
  const ok = editing && editing.ok && session && session.role !== "viewer" &&
             $("policy-comment").value.trim() !== "" && $("policy-text").value !== editing.inForce;
  $("policy-apply").disabled = !ok;
}

async function checkNow() {
  if (!editing) return;
  const name = editing.name, text = $("policy-text").value;
  const [r, body] = await post("/console/api/policies/" + encodeURIComponent(name) + "/check",
                               {text: text});
  if (!editing || editing.name !== name || $("policy-text").value !== text) return; // stale
  if (!r.ok) { messages([{text: body.error || String(r.status)}]); editing.ok = false; canApply(); return; }
  editing.ok = body.ok;
  messages(body.messages);
  changes(body.ok ? body.changes : null);
  canApply();
}

function scheduleCheck() {
  clearTimeout(checkTimer);
  canApply();
  checkTimer = setTimeout(checkNow, 300);
}

async function loadHistory(name) {
  const [r, body] = await getJSON("/console/api/policies/" + encodeURIComponent(name) + "/history");
  if (!r.ok) return;
  fill($("policy-history").tBodies[0], body.history, (tr, h) => {
    cell(tr, new Date(h.at * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC");
    cell(tr, (h.who || "–") + (h.approved_by ? ", approved by " + h.approved_by : ""));
    cell(tr, h.comment);
    cell(tr, h.version, "name");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = "Load this version";
    b.addEventListener("click", () => {
      $("policy-text").value = h.text;
      formFromText();
      $("policy-comment").value = "back to version " + h.version;
      $("policy-result").textContent = "";
      scheduleCheck();
      $("policy-text").focus();
    });
    cell(tr, "").appendChild(b);
  });
}

async function openPolicy(name) {
  $("policy-name").textContent = name;
  $("policy-result").textContent = "";
  $("policy-comment").value = "";
  $("policy-messages").replaceChildren();
  $("policy-changes").replaceChildren();
  $("preview-out").hidden = true;
  $("preview-state").textContent = "";
  const ro = !session || session.role === "viewer";
  $("policy-text").readOnly = ro;
  $("policy-comment").disabled = ro;
  $("policy-apply").title = ro ? "changing a policy takes the coordinator or admin role" : "";
  const [r, body] = await getJSON("/console/api/policies/" + encodeURIComponent(name));
  if (!r.ok) { say(body.error || "cannot read the policy"); return; }
  editing = {name: name, inForce: body.text, ok: true, applied: null,
             twoPerson: body.two_person, pending: body.pending || null};
  $("policy-in-force").textContent = body.version;
  $("policy-text").value = body.text;
  formFromText();
  $("policy-words").replaceChildren(...wordsBlock(body.words));
  $("policy-apply").textContent = body.two_person ? "Propose (a second coordinator approves)" : "Apply";
  showPending(body.pending, ro);
  canApply();
  checkNow();
  loadHistory(name);
}

// The change waiting for a second coordinator (admin.two_person).
function showPending(p, ro) {
  $("policy-pending").hidden = !p;
  $("pending-result").textContent = "";
  if (!p) return;
  $("pending-what").textContent = "Version " + p.version + ", proposed by " + p.who + " at " +
      new Date(p.at * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC: " + p.comment;
  const items = !p.ok ? ["(it no longer passes the check: discard it)"]
              : p.changes.length ? p.changes : ["nothing that matters to the partner"];
  $("pending-changes").replaceChildren(...items.map((t) => {
    const li = document.createElement("li");
    li.textContent = t;
    return li;
  }));
  const mine = session && p.who === session.user;
  $("pending-approve").disabled = ro || mine || !p.ok;
  $("pending-approve").title = mine ? "you proposed it: another coordinator approves it" : "";
  $("pending-discard").disabled = ro;
}

async function decide(what) {
  const name = editing.name, p = editing.pending;
  const [r, body] = await post("/console/api/policies/" + encodeURIComponent(name) + "/" + what,
                               {version: p.version});
  if (!r.ok) {
    $("pending-result").textContent = "Not done: " + (body.error || String(r.status));
    return;
  }
  await openPolicy(name);
  if (what === "approve") {
    editing.applied = body.version;
    $("policy-result").textContent = "Approved and written: version " + body.version +
                                     "; waiting for the relay to run it…";
  } else {
    $("policy-result").textContent = "Discarded version " + body.discarded + ".";
  }
}

$("pending-approve").addEventListener("click", () => decide("approve"));
$("pending-discard").addEventListener("click", () => decide("discard"));
$("pending-load").addEventListener("click", () => {
  $("policy-text").value = editing.pending.text;
  formFromText();
  $("policy-result").textContent = "";
  scheduleCheck();
  $("policy-text").focus();
});

$("preview-run").addEventListener("click", async () => {
  if (!editing) return;
  const name = editing.name;
  $("preview-state").textContent = "running…";
  const [r, body] = await post("/console/api/policies/" + encodeURIComponent(name) + "/preview",
                               {text: $("policy-text").value, explain: $("preview-explain").value.trim()});
  if (!editing || editing.name !== name) return;
  if (!r.ok) {
    $("preview-state").textContent = "No preview: " + (body.error || "the policy has errors");
    if (body.messages) messages(body.messages);
    $("preview-out").hidden = true;
    return;
  }
  $("preview-state").textContent = "Done: " + num(body.records) + " records of the last " +
                                   body.minutes + " minutes.";
  fill($("preview-summary").tBodies[0], body.summary, (tr, x) => {
    cell(tr, x.what);
    cell(tr, num(x.n), "num");
  });
  $("preview-explained").replaceChildren(...body.explain.map((t) => {
    const li = document.createElement("li");
    li.textContent = t;
    return li;
  }));
  fill($("preview-sent").tBodies[0], body.sent, (tr, x) => {
    cell(tr, x.rrname, "name");
    cell(tr, x.rrtype);
    cell(tr, typeof x.rdata === "string" ? x.rdata : JSON.stringify(x.rdata), "name");
    cell(tr, num(x.count), "num");
    cell(tr, x.sensor_id || "–", "name");
  });
  fill($("preview-denied").tBodies[0], body.denied, (tr, x) => {
    cell(tr, x.rrname, "name");
    cell(tr, x.rrtype);
    cell(tr, x.rdata, "name");
    cell(tr, x.verdict);
    cell(tr, x.why);
  });
  $("preview-out").hidden = false;
});


// ---- the form of common fields: it reads and writes the JSON text --------
const formFields = ["f-enabled", "f-rrtypes", "f-names-allow", "f-names-deny", "f-sensors",
                    "f-min-sensors", "f-delay", "f-resolution", "f-sensor-id"];
const csv = (a) => Array.isArray(a) ? a.join(", ") : "";
const lines = (a) => Array.isArray(a) ? a.join("\n") : "";
const splitList = (t, sep) => t.split(sep).map((x) => x.trim()).filter((x) => x !== "");

// The form from the text; disabled while the text is not a JSON object.
function formFromText() {
  let o = null;
  try { o = JSON.parse($("policy-text").value); } catch (e) { /* below */ }
  const ro = !session || session.role === "viewer";
  const ok = o !== null && typeof o === "object" && !Array.isArray(o);
  for (const id of formFields) $(id).disabled = ro || !ok;
  $("form-state").textContent = ok ? (ro ? "Read only." : "")
                                   : "The JSON does not parse: the form waits until it does.";
  if (!ok) return;
  const get = (k) => (o[k] && typeof o[k] === "object") ? o[k] : {};
  $("f-enabled").checked = o.enabled !== false;
  $("f-rrtypes").value = csv(get("rrtypes").allow);
  $("f-names-allow").value = lines(get("names").allow);
  $("f-names-deny").value = lines(get("names").deny);
  $("f-sensors").value = csv(get("sensors").allow);
  $("f-min-sensors").value = o.min_sensors !== undefined ? o.min_sensors : 2;
  $("f-delay").value = o.delay_min !== undefined ? o.delay_min : 0;
  $("f-resolution").value = o.time_resolution !== undefined ? o.time_resolution : 1;
  $("f-sensor-id").value = o.sensor_id || "strip";
}

// One field changed: the text gets it (the other keys as they were).
function textFromForm(id) {
  let o;
  try { o = JSON.parse($("policy-text").value); } catch (e) { return; }
  const setList = (dim, which, list) => {
    const d = (o[dim] && typeof o[dim] === "object") ? o[dim] : {};
    if (list.length) d[which] = list; else delete d[which];
    if (Object.keys(d).length) o[dim] = d; else delete o[dim];
  };
  const setNum = (k, v) => { if (v === "") delete o[k]; else o[k] = Number(v); };
  const v = $(id).value;
  if (id === "f-enabled") { if ($(id).checked) delete o.enabled; else o.enabled = false; }
  else if (id === "f-rrtypes") setList("rrtypes", "allow", splitList(v, ","));
  else if (id === "f-names-allow") setList("names", "allow", splitList(v, "\n"));
  else if (id === "f-names-deny") setList("names", "deny", splitList(v, "\n"));
  else if (id === "f-sensors") setList("sensors", "allow", splitList(v, ","));
  else if (id === "f-min-sensors") setNum("min_sensors", v);
  else if (id === "f-delay") setNum("delay_min", v);
  else if (id === "f-resolution") setNum("time_resolution", v);
  else if (id === "f-sensor-id") o.sensor_id = v;
  $("policy-text").value = JSON.stringify(o, null, 2) + "\n";
  $("policy-result").textContent = "";
  scheduleCheck();
}

for (const id of formFields)
  $(id).addEventListener(id === "f-enabled" || id === "f-sensor-id" ? "change" : "input",
                         () => textFromForm(id));

$("policy-text").addEventListener("input", () => {
  $("policy-result").textContent = "";
  formFromText();
  scheduleCheck();
});
$("policy-comment").addEventListener("input", canApply);
$("policy-apply").addEventListener("click", async () => {
  const name = editing.name, text = $("policy-text").value;
  const [r, body] = await post("/console/api/policies/" + encodeURIComponent(name) + "/apply",
                               {text: text, comment: $("policy-comment").value.trim()});
  if (r.status === 202) {
    await openPolicy(name);
    $("policy-result").textContent = "Proposed: version " + body.pending.version +
                                     " waits for a second coordinator.";
  } else if (r.ok) {
    editing.inForce = text;
    editing.applied = body.version;
    $("policy-result").textContent = "Written: version " + body.version + "; waiting for the relay to run it…";
    $("policy-comment").value = "";
    canApply();
    loadHistory(name);
  } else {
    $("policy-result").textContent = "Not applied: " + (body.error || "the policy has errors");
    if (body.messages) messages(body.messages);
  }
});

function live() {
  if (events) events.close();
  events = new EventSource("/console/api/events");
  events.onopen = () => { $("live-state").textContent = "live"; };
  events.onmessage = (e) => render(JSON.parse(e.data));
  events.onerror = () => {
    $("live-state").textContent = "reconnecting…";
    // a session that ended (idle, sign-out elsewhere) sends us back to sign-in
    fetch("/console/api/session", {credentials: "same-origin"}).then((r) => {
      if (r.status === 401) signedOut("Your session ended; sign in again.");
    }, () => {});
  };
}

function signedIn(s) {
  session = s;
  $("signin").hidden = true;
  $("nav").hidden = false;
  $("who").textContent = s.user + " (" + s.role + ")";
  const reload = $("reload");
  reload.disabled = s.role !== "admin";
  reload.title = s.role === "admin" ? "" : "reloading takes the admin role";
  show(location.hash.slice(1));
  live();
  drawHistory();
  clearInterval(historyTimer);
  historyTimer = setInterval(drawHistory, 10000);
}

function signedOut(why) {
  session = null;
  clearInterval(historyTimer);
  if (events) events.close();
  events = null;
  for (const p of sections) $(p).hidden = true;
  editing = null;
  $("nav").hidden = true;
  $("signin").hidden = false;
  say(why || "");
  $("user").focus();
}

function b64(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

async function post(path, data) {
  const r = await fetch(path, {
    method: "POST", credentials: "same-origin", body: JSON.stringify(data || {}),
    headers: {"Content-Type": "application/json", "X-CSRF-Token": session ? session.csrf : ""},
  });
  let body = {};
  try { body = await r.json(); } catch (e) { /* no body */ }
  return [r, body];
}

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("signin-error").textContent = "";
  const r = await fetch("/console/api/login", {
    method: "POST", credentials: "same-origin", body: "{}",
    headers: {"Content-Type": "application/json",
              "Authorization": "Basic " + b64($("user").value + ":" + $("password").value)},
  });
  let body = {};
  try { body = await r.json(); } catch (err) { /* no body */ }
  $("password").value = "";
  if (r.ok) {
    say("");
    signedIn(body);
    $("main").focus();
  } else {
    $("signin-error").textContent = body.error || ("sign-in failed (" + r.status + ")");
  }
});

$("logout").addEventListener("click", async () => {
  await post("/console/api/logout");
  signedOut("Signed out.");
});

$("reload").addEventListener("click", async () => {
  const [r, body] = await post("/console/api/reload");
  say(r.ok ? "The configuration and the policies were reloaded."
           : "Not reloaded: " + (body.error || r.status));
});

window.addEventListener("hashchange", () => { if (session) show(location.hash.slice(1)); });

fetch("/console/api/session", {credentials: "same-origin"}).then(async (r) => {
  if (r.ok) signedIn(await r.json());
  else signedOut(r.status === 503 ? (await r.json()).error : "");
}, () => signedOut("The relay does not answer."));
