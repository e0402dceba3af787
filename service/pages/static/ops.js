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
  const MAX = 300;
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
    const max = Math.max(1, ...values);
    const n = values.length;
    const points = values.map((v, i) => `${n === 1 ? 300 : (i / (n - 1)) * 300},${76 - (v / max) * 70}`).join(" ");
    svg.innerHTML = "";
    const ns = "http://www.w3.org/2000/svg";
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("class", `line ${cls}`);
    line.setAttribute("points", points);
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.appendChild(line);
    $(id.replace("chart-", "max-")).textContent = `now ${values[n - 1].toLocaleString()}, peak ${max.toLocaleString()}`;
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
    state = d.launch.state;
    $("state").textContent = (labels[state] || state) + (d.launch.paused ? " · paused" : "");
    $("rate-set").textContent = d.admit_rate.toLocaleString();
    $("rate-measured").textContent = rate(d.measured_rate);
    $("eta-last").textContent = d.waiting === 0 ? "nobody waiting" : fd.duration(d.eta_last_seconds);
    $("sold-out").textContent = d.sold_out ? "sold out (returns re-open admission)" : `${d.queue_length.toLocaleString()} places drawn or queued`;
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
      for (const [i, v] of [s.store_name, s.sku_name, s.allocated, s.available, s.held, s.confirmed, s.collected].entries()) {
        const td = document.createElement("td");
        td.textContent = typeof v === "number" ? v.toLocaleString() : v;
        if (i >= 2) td.className = "n";
        tr.appendChild(td);
      }
      return tr;
    });
    $("stock").replaceChildren(...rows);
  }

  async function patch(body, done) {
    const res = await fd.api("PATCH", admin, body);
    if (res.ok) flash("ok", done);
    else flash("bad", (res.body && res.body.detail) || "That did not work.");
    refresh();
  }
  $("rate-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = Number($("admit_rate").value);
    patch({ admit_rate: v }, `Admit rate set to ${v} per second.`);
  });
  $("cap-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = Number($("active_cap").value);
    patch({ active_cap: v }, `Active cap set to ${v}.`);
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
  refresh();
  setInterval(refresh, 1000);
})();
