// The operations dashboard: live counters every second, admission controls through
// the admin API, and small charts drawn as SVG polylines (no chart library).
"use strict";
(function () {
  const ops = document.getElementById("ops");
  if (!ops) return;
  const $ = (id) => document.getElementById(id);
  const launch = ops.dataset.launch;
  const admin = `/api/admin/launches/${encodeURIComponent(launch)}`;
  const states = ops.dataset.states.split(" ");
  const labels = {
    draft: "Draft", registration_open: "Registration open", registration_closed: "Registration closed",
    checkin_open: "Waiting room open", selling: "Selling", sold_out: "Sold out", closed: "Closed",
    pickup: "Pickup", archived: "Archived",
  };
  const series = { waiting: [], admitted: [], available: [] };
  const times = []; // when each sample was taken (ms)
  const MAX = 300;
  const clockFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
  let state = null;

  function flash(kind, text) {
    const el = $("flash");
    el.className = `notice ${kind}`;
    el.textContent = text;
    el.hidden = !text;
  }
  function rate(r) { return r === null || r === undefined ? "not measured yet" : `${r.toFixed(1)} per second`; }

  function draw(id, values, cls) {
    const svg = $(id);
    const peak = Math.max(...values);
    const max = Math.max(1, peak); // the scale: a flat 0 line sits at the bottom
    const n = values.length;
    const points = values.map((v, i) => `${n === 1 ? 300 : (i / (n - 1)) * 300},${76 - (v / max) * 70}`).join(" ");
    svg.innerHTML = "";
    const ns = "http://www.w3.org/2000/svg";
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("class", `line ${cls}`);
    line.setAttribute("points", points);
    line.setAttribute("vector-effect", "non-scaling-stroke");
    // The time axis: a tick at the start, the middle and the end, labelled below.
    for (const x of [0, 150, 300]) {
      const tick = document.createElementNS(ns, "line");
      tick.setAttribute("class", "tick");
      tick.setAttribute("x1", x); tick.setAttribute("x2", x);
      tick.setAttribute("y1", 0); tick.setAttribute("y2", 80);
      tick.setAttribute("vector-effect", "non-scaling-stroke");
      svg.appendChild(tick);
    }
    svg.appendChild(line);
    $(id.replace("chart-", "max-")).textContent = `now ${values[n - 1].toLocaleString()}, peak ${peak.toLocaleString()}`;
    const at = (i) => clockFmt.format(new Date(times[i]));
    const labels = n === 1 ? [at(0)] : [at(0), at(Math.floor((n - 1) / 2)), at(n - 1)];
    $(id.replace("chart-", "axis-")).replaceChildren(...labels.map((text) => {
      const span = document.createElement("span");
      span.textContent = text;
      return span;
    }));
  }

  // Each control's field: what it takes, checked here first, in the operator's words.
  const FIELDS = {
    admit_rate: { label: "The admit rate", min: 0, max: 100000, whole: false, unit: "people per second" },
    active_cap: { label: "The active cap", min: 1, max: 1000000, whole: true, unit: "shoppers" },
  };
  function rule(name) {
    const f = FIELDS[name];
    const kind = f.whole ? "a whole number" : "a number";
    return `${f.label} must be ${kind} of ${f.unit} from ${f.min.toLocaleString()} to ${f.max.toLocaleString()}.`;
  }
  function fieldError(name, text) {
    const input = $(name);
    const err = $(`${name}-error`);
    err.textContent = text || "";
    err.hidden = !text;
    input.setAttribute("aria-invalid", text ? "true" : "false");
    if (text) input.focus();
  }
  function read(name) {
    const f = FIELDS[name];
    const raw = $(name).value.trim();
    const v = Number(raw);
    if (raw === "" || !Number.isFinite(v) || v < f.min || v > f.max || (f.whole && !Number.isInteger(v))) {
      fieldError(name, rule(name));
      return null;
    }
    fieldError(name, "");
    return v;
  }

  function advanceOptions(current) {
    const select = $("advance-to");
    const later = states.slice(states.indexOf(current) + 1);
    if (select.dataset.for === current) return;
    select.dataset.for = current;
    select.replaceChildren(...later.map((s) => {
      const o = document.createElement("option");
      o.value = s;
      o.textContent = labels[s] || s;
      return o;
    }));
    select.disabled = later.length === 0;
  }

  async function refresh() {
    const res = await fd.api("GET", `${admin}/dashboard`);
    $("live").className = res.ok ? "live" : "live offline";
    if (!res.ok) {
      if (res.status === 401) window.location.assign(`/staff/login?next=${encodeURIComponent(location.pathname)}`);
      return;
    }
    const d = res.body;
    for (const key of ["registered", "verified", "checked_in", "waiting", "admitted", "active", "held", "confirmed", "collected", "available"]) {
      $(`c-${key}`).textContent = d[key].toLocaleString();
    }
    times.push(d.at_ms);
    if (times.length > MAX) times.shift();
    state = d.launch.state;
    $("state").textContent = (labels[state] || state) + (d.launch.paused ? " · paused" : "");
    saleControls(d.launch);
    $("rate-set").textContent = d.admit_rate.toLocaleString();
    $("rate-measured").textContent = rate(d.measured_rate);
    $("eta-last").textContent = d.waiting === 0 ? "nobody waiting" : fd.duration(d.eta_last_seconds);
    $("sold-out").textContent = d.sold_out ? "sold out (returns re-open admission)" : `${d.queue_length.toLocaleString()} places drawn or queued`;
    const below = d.held_back.length > 0 && (d.measured_rate === null || d.measured_rate < d.admit_rate * 0.9);
    $("held-back").hidden = !below;
    $("held-back-why").replaceChildren(...d.held_back.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }));
    advanceOptions(state);
    for (const k of Object.keys(series)) {
      series[k].push(d[k]);
      if (series[k].length > MAX) series[k].shift();
    }
    draw("chart-waiting", series.waiting, "queue");
    draw("chart-admitted", series.admitted, "admit");
    draw("chart-available", series.available, "stock");
    const rows = d.stock.map((s) => {
      const tr = document.createElement("tr");
      const heads = ["Store", "Model", "Allocated", "Available", "Held", "Confirmed", "Collected"];
      for (const [i, v] of [s.store_name, s.sku_name, s.allocated, s.available, s.held, s.confirmed, s.collected].entries()) {
        const td = document.createElement("td");
        td.dataset.label = heads[i];
        td.textContent = typeof v === "number" ? v.toLocaleString() : v;
        if (i >= 2) td.className = "n";
        tr.appendChild(td);
      }
      return tr;
    });
    $("stock").replaceChildren(...rows);
    webhooksDisabled(d.webhooks_disabled || []);
  }

  // Only the controls that can act now: pause while running, resume while paused,
  // nothing once the sale is over.
  function saleControls(l) {
    const over = states.indexOf(l.state) >= states.indexOf("closed");
    document.querySelector('[data-action="pause"]').disabled = l.paused || over;
    document.querySelector('[data-action="resume"]').disabled = !l.paused || over;
    document.querySelector('[data-action="close"]').disabled = over;
    $("pause-note").textContent = over
      ? "The sale is over: there is nothing to admit."
      : l.paused
        ? "Paused: nobody new is admitted and no new holds can be placed; holds already placed can still be confirmed."
        : "Running: shoppers are admitted at the set rate.";
  }

  // A webhook endpoint that stopped receiving: which, why, and what waits for it.
  function webhooksDisabled(list) {
    const box = $("webhooks-disabled");
    box.hidden = list.length === 0;
    box.replaceChildren(...list.map((w) => {
      const p = document.createElement("p");
      const n = w.pending;
      const waiting = n ? `${n.toLocaleString()} ${n === 1 ? "delivery waits" : "deliveries wait"} for it, sent in order once it is enabled again` : "Enable it again once the receiver works";
      p.textContent = `Webhook ${w.url} is disabled: ${w.reason}. ${waiting} (${w.id}).`;
      return p;
    }));
  }

  async function patch(body, done) {
    const res = await fd.api("PATCH", admin, body);
    if (res.ok) {
      flash("ok", done);
    } else {
      // A refused field is said in the operator's words, next to it.
      const field = res.body && Array.isArray(res.body.errors) && res.body.errors[0] && res.body.errors[0].field;
      if (FIELDS[field]) fieldError(field, rule(field));
      flash("bad", FIELDS[field] ? "Nothing was changed." : (res.body && res.body.detail) || "That did not work.");
    }
    refresh();
  }
  $("rate-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = read("admit_rate");
    if (v !== null) patch({ admit_rate: v }, `Admit rate set to ${v.toLocaleString()} per second.`);
  });
  $("cap-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = read("active_cap");
    if (v !== null) patch({ active_cap: v }, `Active cap set to ${v.toLocaleString()}.`);
  });
  async function transition(body, done) {
    const res = await fd.api("POST", `${admin}/transitions`, body);
    if (res.ok) flash("ok", done);
    else flash("bad", (res.body && res.body.detail) || "That did not work.");
    refresh();
  }
  for (const b of document.querySelectorAll("[data-action]")) {
    b.addEventListener("click", () => {
      const action = b.dataset.action;
      if (action === "close" && !window.confirm("Close the sale for everyone? This cannot be undone.")) return;
      transition({ action }, { pause: "Paused: nobody new is admitted.", resume: "Resumed.", close: "The sale is closed." }[action]);
    });
  }
  $("advance-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const to = $("advance-to").value;
    if (to) transition({ action: "advance", to }, `Moved to ${labels[to] || to}.`);
  });
  // The launch picker shows the chosen launch at once (the form works without script).
  const pick = $("launch-select");
  if (pick) pick.addEventListener("change", () => window.location.assign(`/ops/${encodeURIComponent(pick.value)}`));
  refresh();
  setInterval(refresh, 1000);
})();
