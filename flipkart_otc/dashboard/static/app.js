// The flipkart-otc dashboard: a picture of every location, then one event at a time,
// from the server's event stream (Server-Sent Events). No framework, no build step.
"use strict";

(() => {
  const URGENT_MS = 60 * 1000; // a code with less than this left needs attention
  const RETRY_MS = 2000; // after the stream closed for good, open a new one
  const LOG_SIZE = 50;
  const BATCH = 10; // cards drawn in one go
  const TITLE = "FE pickups · flipkart-otc";
  const MUTED_KEY = "flipkart-otc:muted";

  // What each status means for the desk, in words (never by colour alone).
  const STATUS = {
    ACTIVE: ["✓", "Return task open"],
    NO_TASK: ["–", "No return task today"],
    CLOSED: ["■", "Return task closed"],
    FAILING: ["⚠", "Not updating"],
    null: ["…", "Waiting for the first check"],
  };
  const KINDS = {
    fe_arrived: "arrived",
    otc_renewed: "got a new code",
    otc_expired: "has an expired code: a new one is needed",
    fe_departed: "left the Start OTC page",
    scanning_started: "started scanning",
    end_otc_ready: "is on the End OTC page: End OTC ready",
  };
  const STAGES = { scanning: "Scanning", end_otc: "End OTC ready" };

  // A failure as the desk can act on it; the raw text stays behind "Details".
  function problem(error) {
    const e = error || "";
    if (/malformed|not JSON|not UTF-8/i.test(e)) {
      return "Flipkart's answer could not be read; retrying";
    }
    if (/UNAUTHORIZED|credentials|HTTP 40[13]\b|token/i.test(e)) {
      return "Access refused: check the credentials";
    }
    if (/HTTP 429|RATE_LIMIT/i.test(e)) return "Flipkart asks us to slow down; waiting";
    if (/INVALID_TASK_TYPE/.test(e)) return "The task here is not a return task";
    if (/SHIPMENT_SYNC/.test(e)) return "Flipkart is syncing the shipments; retrying";
    return "Flipkart is not answering; retrying";
  }

  // The sentence for a location's status (and its failure).
  function sentence(status, error) {
    if (status === "FAILING") return problem(error);
    return (STATUS[status] || ["", String(status)])[1];
  }

  const params = new URLSearchParams(window.location.search);
  const wall = params.get("view") === "wall";
  if (wall) document.body.dataset.view = "wall";

  const view = {
    locations: document.getElementById("locations"),
    log: document.getElementById("log"),
    filter: document.getElementById("filter"),
    connection: document.getElementById("connection"),
    counts: document.getElementById("counts"),
    empty: document.getElementById("empty"),
    mute: document.getElementById("mute"),
    notify: document.getElementById("notify"),
    announce: document.getElementById("announce"),
    stopped: document.getElementById("stopped"),
  };

  const state = {
    instance: null, // which run of the server the data comes from
    offset: 0, // server time minus this browser's time, ms
    seq: 0, // the last event applied
    quietUntil: 0, // events up to this seq happened before the page opened: no calls
    // id -> {id, status, error, fes: Map(fe_id -> fe), visits: Map(fe_id -> visit)}
    locations: new Map(),
    cards: new Map(), // id -> <li>
    order: [],
    dirty: new Set(), // locations to draw again
    queue: [], // a new picture's locations, most urgent last (popped), to draw in batches
    pending: [], // log entries to draw
    lastMessage: 0, // this browser's time of the last message
    attempt: 0, // this browser's time the current stream was opened
    staleMs: 25 * 1000, // no message for this long: the data may be old
    stale: false,
    loading: false, // taking in a picture
    showOtc: false,
    held: { hover: null, focus: null }, // cards that keep their place
    muted: false,
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

  // Drawing waits for the end of the messages that came together: one pass for many.
  // (A message port, not a timer: timers sleep in a background tab.)
  const channel = new MessageChannel();
  let scheduled = false;
  channel.port1.onmessage = () => {
    scheduled = false;
    flush();
  };
  function schedule() {
    if (!scheduled) {
      scheduled = true;
      channel.port2.postMessage(null);
    }
  }

  // -- calling the desk ---------------------------------------------------------------

  let audio = null;

  function setMuted(muted) {
    state.muted = muted;
    view.mute.setAttribute("aria-pressed", String(muted));
    view.mute.querySelector(".icon").textContent = muted ? "⊘" : "♪";
    view.mute.querySelector(".text").textContent = muted ? "Sound off" : "Sound on";
    try {
      window.localStorage.setItem(MUTED_KEY, muted ? "1" : "0");
    } catch (e) {
      // storage refused (a private window): the switch still works for this page
    }
  }

  function sound() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    if (!audio) audio = new Context();
    if (audio.state === "suspended") audio.resume();
    return audio;
  }

  // A short chime made on the spot: ``notes`` in Hz, one after the other.
  function chime(notes) {
    const ctx = sound();
    if (!ctx) return;
    let at = ctx.currentTime;
    for (const hz of notes) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = hz;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(at);
      osc.stop(at + 0.2);
      at += 0.22;
    }
  }

  function alert(kind, title, body, tag) {
    view.announce.textContent = `${title}: ${body}`;
    if (state.muted) return;
    chime(kind === "arrived" ? [660, 880] : [880, 880, 880]);
    if ("Notification" in window && Notification.permission === "granted") {
      try {
        new Notification(title, { body, tag });
      } catch (e) {
        // a browser that only notifies from a service worker: the chime was enough
      }
    }
  }

  function arrivalAlert(loc, f) {
    alert("arrived", `FE at ${loc.id}`, `${name(f)} arrived`, `${loc.id}/${f.fe_id}`);
  }

  function showNotify() {
    view.notify.hidden = !("Notification" in window) || Notification.permission !== "default";
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
    state.attempt = Date.now();
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
      // a stopped watcher retries nothing: the sentence without its "retrying"
      const why = error ? problem(error).replace(/; (retrying|waiting)$/, "") : "";
      markStale(why ? `Stopped: ${why}` : "The watcher stopped");
      view.stopped.hidden = !error;
      view.stopped.querySelector("code").textContent = error || "";
      close();
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) close();
      else if (!state.stale) setConnection("reconnecting", "Reconnecting…");
    };
  }

  // The stream ended for good (the server refused it, or the watcher stopped): try a
  // new one in a moment.
  function close() {
    if (source) source.close();
    source = null;
    clearTimeout(retry);
    retry = setTimeout(connect, RETRY_MS);
  }

  // No message for over two heartbeats: what the page shows may be old. Every card
  // says so, the countdowns stop, and the badge says since when.
  function markStale(why) {
    const since = state.lastMessage ? clock(state.lastMessage) : null;
    setConnection("stale", `${why ? why + " · " : ""}Stale${since ? ` since ${since}` : ""}`);
    if (state.stale) return;
    state.stale = true;
    document.body.classList.add("is-stale");
    for (const id of state.locations.keys()) state.dirty.add(id);
    schedule();
  }

  function live() {
    state.stale = false;
    view.stopped.hidden = true;
    document.body.classList.remove("is-stale");
    setConnection("live", "Live");
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
    if (state.stale) for (const id of state.locations.keys()) state.dirty.add(id);
    live();
    schedule();
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
      urgentSeen: false, // the desk was called for this code's last minute
      view: null, // its <li> and countdown, once drawn
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
      loc = { id, status: null, error: null, fes: new Map(), visits: new Map(), alpha: 0 };
      state.locations.set(id, loc);
      if (!state.loading) alphabet();
    }
    return loc;
  }

  function name(known) {
    if (!known.fe_name) return known.fe_id;
    return known.logistic_partner ? `${known.fe_name} (${known.logistic_partner})` : known.fe_name;
  }

  // Who an event is about, as the page knows them.
  function who(loc, d) {
    return name(loc.fes.get(d.fe_id) || loc.visits.get(d.fe_id) || d);
  }

  function onSnapshot(e) {
    const picture = JSON.parse(e.data);
    const before = state.instance === null ? null : state.locations;
    about(picture);
    state.instance = picture.instance;
    state.seq = picture.seq;
    // on opening, the events up to caught_up happened before the page came (a shared
    // picture is a little older than the newest event): nobody is called for them
    if (before === null) state.quietUntil = picture.caught_up ?? picture.seq;
    state.locations = new Map();
    const now = serverNow();
    state.loading = true;
    for (const item of picture.locations) {
      const loc = location(item.location_id);
      loc.status = item.status;
      loc.error = item.error;
      for (const d of item.details) {
        const f = fe(d);
        // nobody is called for what was already there when the page opened
        f.urgentSeen = f.expires - now < URGENT_MS;
        loc.fes.set(d.fe_id, f);
        const known = before && before.get(loc.id);
        if (before && !(known && known.fes.has(d.fe_id))) arrivalAlert(loc, f);
      }
      for (const v of item.visits || []) loc.visits.set(v.fe_id, visit(v));
    }
    state.loading = false;
    alphabet();
    view.locations.replaceChildren();
    state.cards = new Map();
    state.order = [];
    state.dirty = new Set(state.locations.keys());
    state.queue = [];
    live();
    schedule();
  }

  function onEvent(e) {
    touch();
    const d = JSON.parse(e.data);
    if (d.seq <= state.seq) return; // seen already
    state.seq = d.seq;
    const loc = location(d.location_id);
    const label = d.event === "location_status_changed" ? null : who(loc, d);
    const v = loc.visits.get(d.fe_id);
    switch (d.event) {
      case "fe_arrived": {
        const f = fe(d);
        f.urgentSeen = f.expires - serverNow() < URGENT_MS; // one call, not two
        loc.fes.set(d.fe_id, f);
        if (d.seq > state.quietUntil) arrivalAlert(loc, f); // else: there before the page
        break;
      }
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
    state.pending.push([d, label]);
    state.dirty.add(d.location_id);
    schedule();
  }

  function entry(d, label) {
    const item = el("li", `entry ${d.event}`);
    item.dataset.seq = String(d.seq);
    const when = clock(Date.parse(d.observed_at) - state.offset);
    const head = [el("time", "", when), " ", el("strong", "", d.location_id)];
    if (d.event === "location_status_changed") {
      const [icon] = STATUS[d.status] || ["?"];
      item.append(...head, `: ${icon} ${sentence(d.status, d.error)}`);
      if (d.error) item.append(details(d.error));
      return item;
    }
    let what;
    if (d.event === "shipment_scanned") {
      what = `${label} scanned ${d.tracking_id} (${d.status})`;
    } else if (d.event === "visit_completed") {
      what = `${label} finished the visit: ${d.scanned} scanned`;
    } else if (d.event === "visit_left") {
      what = `${label} left while scanning: ${d.scanned} scanned`;
    } else {
      what = `${label} ${KINDS[d.event] || d.event}`;
    }
    item.append(...head, ` ${what}`);
    return item;
  }

  // The raw failure, one click away.
  function details(error) {
    const box = el("details", "raw");
    box.append(el("summary", "", "Details"), el("code", "", error));
    return box;
  }

  // -- drawing ----------------------------------------------------------------------

  // The order of the cards, most urgent first: failing; FEs at the door, by the code
  // that runs out soonest (an expired one, or an End OTC to read out, before all);
  // FEs scanning; open tasks with nobody; locations not checked yet; the rest.
  function rank(loc, now) {
    if (loc.status === "FAILING") return [0, 0];
    let soonest = Infinity;
    for (const f of loc.fes.values()) soonest = Math.min(soonest, f.expires - now);
    for (const v of loc.visits.values()) if (v.stage === "end_otc") soonest = Math.min(soonest, 0);
    if (soonest < Infinity) return [1, Math.max(soonest, -1)];
    if (loc.visits.size) return [2, 0];
    if (loc.status === "ACTIVE") return [3, 0];
    if (loc.status === null) return [4, 0];
    return [5, 0];
  }

  function countdown(f, now) {
    const ms = f.expires - now;
    if (state.stale) return ["frozen", `expires at ${clock(f.expires - state.offset)}`];
    if (ms <= 0) return ["expired", "EXPIRED · new code needed"];
    if (ms < URGENT_MS) return ["urgent", `URGENT · ${left(ms)} left`];
    return ["ok", `expires in ${left(ms)}`];
  }

  function drawCard(id, now) {
    const loc = state.locations.get(id);
    let card = state.cards.get(id);
    if (!card) {
      card = el("li");
      card.tabIndex = 0;
      card.dataset.location = id;
      // out of sight (content-visibility: auto) its countdowns wait until it is seen
      card.addEventListener("contentvisibilityautostatechange", (e) => {
        card.skipped = e.skipped;
        if (!e.skipped && !state.stale) {
          const now = serverNow();
          for (const f of state.locations.get(id).fes.values()) if (f.view) tickFe(f, now);
        }
      });
      state.cards.set(id, card);
    }
    const [icon] = STATUS[loc.status] || ["?"];
    const status = loc.status || "PENDING";
    card.className = `card status-${status}${state.stale ? " stale" : ""}`;
    card.dataset.status = status;
    const head = el("div", "card-head");
    head.append(el("h3", "loc", id), el("span", "status", `${icon} ${sentence(loc.status, loc.error)}`));
    const parts = [head];
    if (loc.error && loc.status === "FAILING") parts.push(details(loc.error));
    if (loc.fes.size) {
      const list = el("ul", "fes");
      for (const f of [...loc.fes.values()].sort((a, b) => a.fe_id.localeCompare(b.fe_id))) {
        list.append(drawFe(f, now));
      }
      parts.push(list);
    }
    if (loc.visits.size) parts.push(drawVisits(loc));
    if (!loc.fes.size && !loc.visits.size && loc.status === "ACTIVE") {
      parts.push(el("p", "none", "No FE at the door"));
    }
    if (state.stale) parts.push(el("p", "asof", `as of ${clock(state.lastMessage)}`));
    card.replaceChildren(...parts);
  }

  function drawFe(f, now) {
    const item = el("li", "fe");
    item.dataset.fe = f.fe_id;
    const line = el("div", "fe-line");
    const meta = [f.logistic_partner, f.lob].filter(Boolean).join(" · ");
    line.append(feName(f));
    if (meta) line.append(" ", el("span", "fe-meta", meta));
    const time = el("span", "countdown");
    const codeLine = el("div", "fe-code");
    codeLine.append(code(f.otc), time);
    item.append(line, codeLine);
    f.view = { item, time, kind: null, text: null };
    tickFe(f, now);
    return item;
  }

  // The FE's name (its id when it has none; the id on hover otherwise).
  function feName(f) {
    const node = el("span", "fe-name", f.fe_name || f.fe_id);
    node.title = f.fe_id;
    return node;
  }

  // The FE's countdown as of ``now``; true when its kind changed (its card moves).
  function tickFe(f, now) {
    const [kind, text] = countdown(f, now);
    const v = f.view;
    if (v.text !== text) v.time.textContent = text;
    v.text = text;
    if (v.kind === kind) return false;
    v.kind = kind;
    v.item.className = `fe ${kind}`;
    v.time.className = `countdown ${kind}`;
    return true;
  }

  function code(otc) {
    const node = state.showOtc ? el("span", "otc", otc) : el("span", "otc masked", "••••••");
    // a label on a <span> is not read out: say it in words the reader reads
    const label = state.showOtc ? `OTC ${otc.split("").join(" ")}` : "OTC hidden";
    node.setAttribute("role", "img");
    node.setAttribute("aria-label", label);
    return node;
  }

  // The FEs past the Start OTC page: their stage, scan progress and End OTC.
  function drawVisits(loc) {
    const list = el("ul", "visits");
    for (const v of [...loc.visits.values()].sort((a, b) => a.fe_id.localeCompare(b.fe_id))) {
      const item = el("li", `visit stage-${v.stage}`);
      item.dataset.fe = v.fe_id;
      item.dataset.stage = v.stage;
      const line = el("div", "fe-line");
      line.append(feName(v));
      if (v.logistic_partner) line.append(" ", el("span", "fe-meta", v.logistic_partner));
      const rejected = v.rejected ? ` (${v.rejected} rejected)` : "";
      const progress = el("span", "progress", `${v.scanned} scanned${rejected}`);
      progress.dataset.scanned = String(v.scanned);
      const stage = el("div", "fe-stage");
      stage.append(el("span", "stage", STAGES[v.stage] || v.stage), " ", progress);
      const parts = [line, stage];
      if (v.end_otc) {
        const end = el("div", "fe-code");
        end.append(code(v.end_otc.otc));
        parts.push(end);
      }
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

  // Everything that changed since the last pass: cards, order, counts, title, log. A
  // thousand cards to draw (a new picture) are drawn a batch at a time, the most urgent
  // first, so that the page answers between batches.
  function flush() {
    const now = serverNow();
    let todo = [...state.dirty];
    if (todo.length > BATCH) {
      // in the order of urgency, ranked once for the whole picture
      if (!state.queue.length) state.queue = ranking(now).map((r) => r.id).reverse();
      todo = [];
      while (todo.length < BATCH && state.queue.length) {
        const id = state.queue.pop();
        if (state.dirty.has(id)) todo.push(id);
      }
    }
    for (const id of todo) {
      state.dirty.delete(id);
      if (state.locations.has(id)) drawCard(id, now);
    }
    if (state.dirty.size) schedule();
    else state.queue = [];
    if (state.pending.length) {
      const items = state.pending.slice(-LOG_SIZE).reverse().map(([d, n]) => entry(d, n));
      state.pending = [];
      if (!wall) {
        view.log.prepend(...items);
        while (view.log.children.length > LOG_SIZE) view.log.lastElementChild.remove();
      }
    }
    arrange(now);
  }

  // Every location, most urgent first.
  function ranking(now) {
    const ranked = [];
    for (const loc of state.locations.values()) {
      const [group, soon] = rank(loc, now);
      ranked.push({ group, soon, alpha: loc.alpha, id: loc.id, loc });
    }
    ranked.sort((a, b) => a.group - b.group || a.soon - b.soon || a.alpha - b.alpha);
    return ranked;
  }

  // Each location's place in the order of names, for ties: numbers compare faster.
  function alphabet() {
    const ids = [...state.locations.keys()].sort();
    ids.forEach((id, i) => {
      state.locations.get(id).alpha = i;
    });
  }

  function arrange(now) {
    const ranked = ranking(now).filter((r) => state.cards.has(r.id)); // drawn yet
    let order = ranked.map((r) => r.id);
    if (!state.stale) order = hold(order); // a stale page keeps its order
    else if (state.order.length === order.length) order = state.order;
    if (order.join("\n") !== state.order.join("\n")) place(order);
    const needle = wall ? "" : view.filter.value.trim().toLowerCase();
    let shown = 0;
    const counts = { door: 0, expired: 0, visits: 0, failing: 0, waiting: 0 };
    for (const { id, loc } of ranked) {
      const visible = matches(loc, needle);
      const card = state.cards.get(id);
      if (card.hidden === visible) card.hidden = !visible;
      shown += visible ? 1 : 0;
      for (const f of loc.fes.values()) {
        if (f.expires > now) counts.door += 1;
        else counts.expired += 1;
      }
      for (const v of loc.visits.values()) {
        counts.visits += 1;
        if (v.stage === "end_otc") counts.waiting += 1;
      }
      counts.failing += loc.status === "FAILING" ? 1 : 0;
    }
    view.empty.hidden = shown > 0 || state.locations.size === 0;
    drawCounts(counts);
    const waiting = counts.door + counts.expired + counts.waiting;
    const title = waiting ? `(${waiting}) ${TITLE}` : TITLE;
    if (document.title !== title) document.title = title;
  }

  // Where a hovered or focused card stays: the others move around it.
  function hold(order) {
    const kept = [state.held.hover, state.held.focus].filter(
      (id, i, all) => id && all.indexOf(id) === i && state.order.includes(id),
    );
    if (!kept.length) return order;
    const rest = order.filter((id) => !kept.includes(id));
    for (const id of kept.sort((a, b) => state.order.indexOf(a) - state.order.indexOf(b))) {
      rest.splice(Math.min(state.order.indexOf(id), rest.length), 0, id);
    }
    return rest;
  }

  // Move only the cards out of place (a moved card loses the pointer and the focus).
  function place(order) {
    const list = view.locations;
    let node = list.firstElementChild;
    for (const id of order) {
      const card = state.cards.get(id);
      if (card === node) node = node.nextElementSibling;
      else list.insertBefore(card, node);
    }
    state.order = order;
  }

  let countsText = "";
  function drawCounts(c) {
    const n = state.locations.size;
    const parts = [
      ["locations", n, `${n} location${n === 1 ? "" : "s"}`],
      ["door", c.door, `${c.door} FE${c.door === 1 ? "" : "s"} at the door`],
    ];
    if (c.expired) parts.push(["expired", c.expired, `${c.expired} with an expired code`]);
    if (c.visits) parts.push(["visits", c.visits, `${c.visits} scanning or at End OTC`]);
    if (c.failing) parts.push(["failing", c.failing, `${c.failing} not updating`]);
    const text = parts.map((p) => p[2]).join(" · ");
    if (text === countsText) return;
    countsText = text;
    const nodes = [];
    for (const [kind, value, words] of parts) {
      if (nodes.length) nodes.push(" · ");
      const span = el("span", `count count-${kind}`, words);
      span.dataset.count = String(value);
      nodes.push(span);
    }
    view.counts.replaceChildren(...nodes);
  }

  // Every second: the countdowns move on (and the cards with them), a code entering
  // its last minute calls the desk, and a silent stream is shown as stale.
  function tick() {
    const now = serverNow();
    if (!state.stale) {
      for (const loc of state.locations.values()) {
        const seen = !state.cards.get(loc.id)?.skipped;
        for (const f of loc.fes.values()) {
          if (!f.view) continue;
          if (seen) tickFe(f, now);
          const ms = f.expires - now;
          if (!f.urgentSeen && ms < URGENT_MS) {
            f.urgentSeen = true;
            if (ms > 0) {
              alert("urgent", `Code expiring at ${loc.id}`, `${name(f)}: under a minute left`, `${loc.id}/${f.fe_id}`);
            }
          }
        }
      }
      arrange(now);
    }
    const since = Date.now() - state.lastMessage;
    if (source && state.lastMessage && !state.stale && since > state.staleMs) {
      markStale();
      close(); // a silent stream may never end by itself: open a new one
    } else if (state.stale && source && Date.now() - state.attempt > state.staleMs) {
      connect(); // still nothing from the new one
    }
  }

  // -- controls -----------------------------------------------------------------------

  function cardId(target) {
    const card = target && target.closest ? target.closest("li.card") : null;
    return card ? card.dataset.location : null;
  }
  view.locations.addEventListener("mouseover", (e) => {
    state.held.hover = cardId(e.target);
  });
  view.locations.addEventListener("mouseleave", () => {
    state.held.hover = null;
  });
  view.locations.addEventListener("focusin", (e) => {
    state.held.focus = cardId(e.target);
  });
  view.locations.addEventListener("focusout", (e) => {
    state.held.focus = cardId(e.relatedTarget);
  });

  view.filter.addEventListener("input", () => arrange(serverNow()));
  view.mute.addEventListener("click", () => setMuted(!state.muted));
  view.notify.addEventListener("click", () => {
    Notification.requestPermission().then(showNotify, showNotify);
  });
  for (const button of document.querySelectorAll(".tabs button")) {
    button.addEventListener("click", () => {
      const tab = button.id.replace("tab-", "");
      document.body.dataset.tab = tab;
      for (const b of document.querySelectorAll(".tabs button")) {
        b.setAttribute("aria-pressed", String(b === button));
      }
    });
  }
  // a browser lets a page make sound once someone has used it: be ready from then on
  const unlock = () => sound();
  document.addEventListener("pointerdown", unlock, { once: true });
  document.addEventListener("keydown", unlock, { once: true });

  let stored = null;
  try {
    stored = window.localStorage.getItem(MUTED_KEY);
  } catch (e) {
    // no storage: sound on
  }
  setMuted(stored === "1");
  showNotify();
  setInterval(tick, 1000);
  connect();
})();
