// The flipkart-otc dashboard: a picture of every location, then one event at a time,
// from the server's event stream (Server-Sent Events). No framework, no build step.
"use strict";

(() => {
  const URGENT_MS = 60 * 1000; // a code with less than this left needs attention
  const RETRY_MS = 2000; // after the stream closed for good, open a new one
  const LOG_SIZE = 50;

  const STATUS = {
    ACTIVE: ["✓", "Active"],
    NO_TASK: ["–", "No task"],
    CLOSED: ["■", "Task closed"],
    FAILING: ["⚠", "Failing"],
    null: ["…", "Waiting for the first poll"],
  };
  const KINDS = {
    fe_arrived: "arrived",
    otc_renewed: "got a new code",
    otc_expired: "code expired",
    fe_departed: "left the Start OTC page",
    scanning_started: "started scanning",
    end_otc_ready: "is on the End OTC page: End OTC ready",
  };
  const STAGES = { scanning: "Scanning", end_otc: "End OTC ready" };

  const view = {
    locations: document.getElementById("locations"),
    log: document.getElementById("log"),
    filter: document.getElementById("filter"),
    connection: document.getElementById("connection"),
    counts: document.getElementById("counts"),
    empty: document.getElementById("empty"),
  };

  const state = {
    instance: null, // which run of the server the data comes from
    offset: 0, // server time minus this browser's time, ms
    seq: 0, // the last event applied
    // id -> {id, status, error, fes: Map(fe_id -> fe), visits: Map(fe_id -> visit)}
    locations: new Map(),
    cards: new Map(), // id -> <li>
    order: [],
    lastMessage: 0, // this browser's time of the last message
    staleMs: 25 * 1000, // no message for this long: the data may be old
    showOtc: false,
  };
  let source = null;
  let retry = null;

  const serverNow = () => Date.now() + state.offset;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clock(ms) {
    const d = new Date(ms);
    return [d.getHours(), d.getMinutes(), d.getSeconds()]
      .map((n) => String(n).padStart(2, "0"))
      .join(":");
  }

  function left(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  // -- the connection ---------------------------------------------------------------

  function setConnection(kind, text) {
    view.connection.className = `connection ${kind}`;
    view.connection.textContent = text;
    view.connection.dataset.state = kind;
  }

  function touch() {
    state.lastMessage = Date.now();
  }

  function connect() {
    if (source) source.close();
    clearTimeout(retry);
    // a new EventSource sends no Last-Event-ID: the server starts it with a picture
    source = new EventSource("events");
    source.addEventListener("snapshot", onSnapshot);
    source.addEventListener("resume", onResume);
    source.onmessage = onEvent;
    source.addEventListener("time", (e) => {
      touch();
      state.offset = JSON.parse(e.data).server_time - Date.now();
    });
    source.addEventListener("resync", () => connect());
    source.addEventListener("stopped", (e) => {
      const error = JSON.parse(e.data).error;
      stale(error ? `Watcher stopped: ${error}` : "Watcher stopped");
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) stale();
      else setConnection("reconnecting", "Reconnecting…");
    };
  }

  function stale(why) {
    if (source) source.close();
    source = null;
    const since = state.lastMessage ? ` since ${clock(state.lastMessage)}` : "";
    setConnection("stale", `${why ? why + " · " : ""}Stale${since}`);
    clearTimeout(retry);
    retry = setTimeout(connect, RETRY_MS);
  }

  // What the first message of a stream says about the server.
  function about(message) {
    touch();
    state.offset = message.server_time - Date.now();
    state.showOtc = message.show_otc;
    state.staleMs = 2.5 * message.heartbeat_ms; // two heartbeats missed, and some
  }

  function onResume(e) {
    const message = JSON.parse(e.data);
    if (message.instance !== state.instance) {
      connect(); // resumed against another run of the server: start from a picture
      return;
    }
    about(message);
    setConnection("live", "Live");
  }

  // -- the data ---------------------------------------------------------------------

  function fe(d) {
    return {
      fe_id: d.fe_id,
      fe_name: d.fe_name,
      logistic_partner: d.logistic_partner,
      lob: d.lob_raw || d.lob,
      otc: d.otc,
      expires: Date.parse(d.expires_at),
    };
  }

  // An FE past the Start OTC page (a visit watcher's): its stage and scan progress.
  function visit(v) {
    return {
      fe_id: v.fe_id,
      fe_name: v.fe_name,
      logistic_partner: v.logistic_partner,
      stage: v.stage,
      scanned: v.scanned,
      rejected: v.rejected,
      end_otc: v.end_otc,
    };
  }

  function location(id) {
    let loc = state.locations.get(id);
    if (!loc) {
      loc = { id, status: null, error: null, fes: new Map(), visits: new Map() };
      state.locations.set(id, loc);
    }
    return loc;
  }

  // Who an event is about, as the page knows them.
  function who(loc, d) {
    const known = loc.fes.get(d.fe_id) || loc.visits.get(d.fe_id) || d;
    if (!known.fe_name) return d.fe_id;
    return known.logistic_partner ? `${known.fe_name} (${known.logistic_partner})` : known.fe_name;
  }

  function onSnapshot(e) {
    const picture = JSON.parse(e.data);
    about(picture);
    state.instance = picture.instance;
    setConnection("live", "Live");
    state.seq = picture.seq;
    state.locations = new Map();
    for (const item of picture.locations) {
      const loc = location(item.location_id);
      loc.status = item.status;
      loc.error = item.error;
      for (const d of item.details) loc.fes.set(d.fe_id, fe(d));
      for (const v of item.visits || []) loc.visits.set(v.fe_id, visit(v));
    }
    view.locations.replaceChildren();
    state.cards = new Map();
    state.order = [];
    for (const id of state.locations.keys()) drawCard(id);
    arrange();
  }

  function onEvent(e) {
    touch();
    const d = JSON.parse(e.data);
    if (d.seq <= state.seq) return; // seen already
    state.seq = d.seq;
    const loc = location(d.location_id);
    const name = d.event === "location_status_changed" ? null : who(loc, d);
    const v = loc.visits.get(d.fe_id);
    switch (d.event) {
      case "fe_arrived":
      case "otc_renewed":
        loc.fes.set(d.fe_id, fe(d));
        break;
      case "otc_expired":
        break; // the countdown says so from the expiry instant
      case "fe_departed":
        loc.fes.delete(d.fe_id);
        break;
      case "location_status_changed":
        loc.status = d.status;
        loc.error = d.error;
        break;
      case "scanning_started":
        loc.visits.set(d.fe_id, visit({ ...d, stage: "scanning", scanned: 0, rejected: 0 }));
        break;
      case "shipment_scanned":
        if (v) {
          v.scanned += 1;
          if (d.status.trim().toUpperCase() === "REJECTED") v.rejected += 1;
        }
        break;
      case "end_otc_ready":
        if (v) {
          v.stage = "end_otc";
          v.end_otc = d;
        }
        break;
      case "visit_completed":
      case "visit_left":
        loc.visits.delete(d.fe_id);
        break;
    }
    log(d, name);
    drawCard(d.location_id);
    arrange();
  }

  function log(d, name) {
    const when = clock(Date.parse(d.observed_at) - state.offset);
    let what;
    if (d.event === "location_status_changed") {
      what = `is now ${STATUS[d.status][1]}${d.error ? ` (${d.error})` : ""}`;
    } else if (d.event === "shipment_scanned") {
      what = `${name} scanned ${d.tracking_id} (${d.status})`;
    } else if (d.event === "visit_completed") {
      what = `${name} finished the visit: ${d.scanned} scanned`;
    } else if (d.event === "visit_left") {
      what = `${name} left while scanning: ${d.scanned} scanned`;
    } else {
      what = `${name} ${KINDS[d.event]}`;
    }
    const item = el("li", `entry ${d.event}`);
    item.append(el("time", "", when), " ", el("strong", "", d.location_id), ` ${what}`);
    view.log.prepend(item);
    while (view.log.children.length > LOG_SIZE) view.log.lastElementChild.remove();
  }

  // -- drawing ----------------------------------------------------------------------

  // Needs attention first: failing, then codes about to expire (or expired) and End OTCs
  // to read out, then FEs at the door or scanning, tasks waiting, locations not polled
  // yet, and idle ones last.
  function rank(loc, now) {
    if (loc.status === "FAILING") return 0;
    let soonest = Infinity;
    for (const f of loc.fes.values()) soonest = Math.min(soonest, f.expires - now);
    if (soonest < URGENT_MS) return 1;
    for (const v of loc.visits.values()) if (v.stage === "end_otc") return 1; // read it out
    if (loc.fes.size || loc.visits.size) return 2;
    if (loc.status === "ACTIVE") return 3;
    if (loc.status === null) return 4;
    return 5;
  }

  function countdown(f, now) {
    const ms = f.expires - now;
    if (ms <= 0) return ["expired", "EXPIRED"];
    if (ms < URGENT_MS) return ["urgent", `URGENT · expires in ${left(ms)}`];
    return ["ok", `expires in ${left(ms)}`];
  }

  function drawCard(id) {
    const loc = state.locations.get(id);
    let card = state.cards.get(id);
    if (!card) {
      card = el("li");
      state.cards.set(id, card);
    }
    const now = serverNow();
    const [icon, label] = STATUS[loc.status] || ["?", loc.status];
    card.className = `card status-${loc.status || "PENDING"}`;
    card.dataset.location = id;
    card.dataset.status = loc.status || "PENDING";
    const head = el("div", "card-head");
    head.append(el("span", "loc", id), el("span", "status", `${icon} ${label}`));
    const parts = [head];
    if (loc.status === "FAILING" && loc.error) parts.push(el("p", "error", loc.error));
    if (loc.fes.size) {
      const list = el("ul", "fes");
      for (const f of [...loc.fes.values()].sort((a, b) => a.fe_id.localeCompare(b.fe_id))) {
        const item = el("li", "fe");
        item.dataset.fe = f.fe_id;
        const name = el("div", "fe-name", f.fe_name);
        name.append(" ", el("span", "fe-id", f.fe_id));
        const meta = el("div", "fe-meta", `${f.logistic_partner} · ${f.lob}`);
        const otc = code(f.otc);
        const [kind, text] = countdown(f, now);
        const time = el("div", `countdown ${kind}`, text);
        item.className = `fe ${kind}`;
        item.append(name, meta, otc, time);
        list.append(item);
      }
      parts.push(list);
    }
    if (loc.visits.size) parts.push(drawVisits(loc));
    if (!loc.fes.size && !loc.visits.size && loc.status === "ACTIVE") {
      parts.push(el("p", "none", "No FE at the door"));
    }
    card.replaceChildren(...parts);
  }

  function code(otc) {
    const node = state.showOtc ? el("div", "otc", otc) : el("div", "otc masked", "••••••");
    node.setAttribute("aria-label", state.showOtc ? `OTC ${otc.split("").join(" ")}` : "OTC hidden");
    return node;
  }

  // The FEs past the Start OTC page: their stage, scan progress and End OTC.
  function drawVisits(loc) {
    const list = el("ul", "visits");
    for (const v of [...loc.visits.values()].sort((a, b) => a.fe_id.localeCompare(b.fe_id))) {
      const item = el("li", `visit stage-${v.stage}`);
      item.dataset.fe = v.fe_id;
      item.dataset.stage = v.stage;
      const name = el("div", "fe-name", v.fe_name || v.fe_id);
      name.append(" ", el("span", "fe-id", v.fe_id));
      const parts = [name];
      if (v.logistic_partner) parts.push(el("div", "fe-meta", v.logistic_partner));
      const rejected = v.rejected ? ` (${v.rejected} rejected)` : "";
      const progress = el("div", "progress", `${v.scanned} scanned${rejected}`);
      progress.dataset.scanned = String(v.scanned);
      parts.push(el("div", "stage", STAGES[v.stage] || v.stage), progress);
      if (v.end_otc) parts.push(code(v.end_otc.otc));
      item.append(...parts);
      list.append(item);
    }
    return list;
  }

  function matches(loc, needle) {
    if (!needle) return true;
    if (loc.id.toLowerCase().includes(needle)) return true;
    for (const f of [...loc.fes.values(), ...loc.visits.values()]) {
      if ((f.fe_name || "").toLowerCase().includes(needle)) return true;
    }
    return false;
  }

  function arrange() {
    const now = serverNow();
    const ranked = [...state.locations.values()].map((loc) => [rank(loc, now), loc.id, loc]);
    ranked.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    const order = ranked.map((r) => r[1]);
    if (order.join("\n") !== state.order.join("\n")) {
      view.locations.append(...order.map((id) => state.cards.get(id)));
      state.order = order;
    }
    const needle = view.filter.value.trim().toLowerCase();
    let shown = 0;
    const counts = { FEs: 0, visits: 0, failing: 0 };
    for (const [, id, loc] of ranked) {
      const visible = matches(loc, needle);
      state.cards.get(id).hidden = !visible;
      shown += visible ? 1 : 0;
      counts.FEs += loc.fes.size;
      counts.visits += loc.visits.size;
      counts.failing += loc.status === "FAILING" ? 1 : 0;
    }
    view.empty.hidden = shown > 0 || state.locations.size === 0;
    view.counts.textContent =
      `(${state.locations.size}; ${counts.FEs} FE${counts.FEs === 1 ? "" : "s"} at the door` +
      `${counts.visits ? `; ${counts.visits} scanning or on the End OTC page` : ""}` +
      `${counts.failing ? `; ${counts.failing} failing` : ""})`;
  }

  // Every second: the countdowns move on, and an old connection is shown as stale.
  function tick() {
    for (const loc of state.locations.values()) {
      if (loc.fes.size) drawCard(loc.id);
    }
    arrange();
    if (source && state.lastMessage && Date.now() - state.lastMessage > state.staleMs) {
      stale();
    }
  }

  view.filter.addEventListener("input", arrange);
  setInterval(tick, 1000);
  connect();
})();
