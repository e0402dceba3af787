// The agent console: search, the customer's whole story across channels, and
// cancelling with a reason (the API returns the unit and records who and why).
"use strict";
(function () {
  const root = document.getElementById("agent");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const launchNames = JSON.parse($("launch-names").textContent);
  let lastQuery = "";

  function fill(node, field, text) {
    const el = node.querySelector(`[data-f="${field}"]`);
    if (el) el.textContent = text;
    return el;
  }
  function flash(kind, text) {
    const el = $("flash");
    el.className = `notice ${kind}`;
    el.textContent = text;
    el.hidden = !text;
  }
  function describe(e) {
    const extra = e.data && e.data.reason ? ` — “${e.data.reason}”` : "";
    return `${e.kind.replace(/[._]/g, " ")}${extra}`;
  }

  function renderReservation(r, code) {
    const node = $("reservation-tpl").content.firstElementChild.cloneNode(true);
    fill(node, "code", code);
    const badge = fill(node, "status", r.status);
    badge.className = `badge ${r.status}`;
    const names = launchNames[r.launch_id] || { stores: {}, skus: {} };
    fill(node, "what", `${names.skus[r.sku_id] || r.sku_id} at ${names.stores[r.store_id] || r.store_id}`);
    const start = node.querySelector('[data-f="start-cancel"]');
    const form = node.querySelector(".cancel-form");
    const id = `reason-${r.id}`;
    form.querySelector("textarea").id = id;
    form.querySelector("label").htmlFor = id;
    start.hidden = r.status !== "confirmed";
    start.setAttribute("aria-label", `Cancel reservation ${code}`);
    start.addEventListener("click", () => { start.hidden = true; form.hidden = false; form.querySelector("textarea").focus(); });
    node.querySelector('[data-f="back"]').addEventListener("click", () => { form.hidden = true; start.hidden = false; start.focus(); });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const reason = form.querySelector("textarea").value.trim();
      const err = form.querySelector(".error");
      if (reason.length < 3) {
        err.textContent = "Say why in a few words (at least 3 characters).";
        err.hidden = false;
        return;
      }
      const res = await fd.api("POST", `/api/agent/launches/${encodeURIComponent(r.launch_id)}/reservations/${r.id}/cancel`, { reason });
      if (!res.ok) {
        err.textContent = (res.body && res.body.detail) || "Could not cancel.";
        err.hidden = false;
        return;
      }
      flash("ok", `Reservation ${code} cancelled; the unit is back in stock.`);
      search(lastQuery);
    });
    return node;
  }

  function renderCustomer(c) {
    const node = $("customer-tpl").content.firstElementChild.cloneNode(true);
    const g = c.registration;
    fill(node, "name", g.name || g.email);
    fill(node, "launch", (launchNames[g.launch_id] || {}).name || g.launch_id);
    fill(node, "public", g.public_id);
    fill(node, "email", g.email);
    fill(node, "phone", g.phone || "–");
    fill(node, "registered", `${fd.when(g.created_at)} (${g.channel})`);
    fill(node, "verified", g.verified_at ? fd.when(g.verified_at) : "not yet");
    const box = node.querySelector('[data-f="reservations"]');
    if (c.reservations.length === 0) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = "No reservations.";
      box.appendChild(p);
    }
    c.reservations.forEach((r, i) => box.appendChild(renderReservation(r, c.codes[i])));
    const list = node.querySelector('[data-f="timeline"]');
    for (const e of c.timeline) {
      const li = document.createElement("li");
      const t = document.createElement("span");
      t.className = "t";
      t.textContent = fd.when(e.at);
      const what = document.createElement("span");
      what.textContent = describe(e);
      const ch = document.createElement("span");
      ch.className = "tag";
      ch.textContent = `${e.channel} · ${e.actor}`;
      what.appendChild(ch);
      li.append(t, what);
      list.appendChild(li);
    }
    return node;
  }

  async function search(q) {
    lastQuery = q;
    const err = $("q-error");
    err.hidden = true;
    if (!q) return;
    const res = await fd.api("GET", `/api/agent/customers?q=${encodeURIComponent(q)}`);
    if (!res.ok) {
      err.textContent = (res.body && res.body.detail) || "Search failed.";
      err.hidden = false;
      $("results").replaceChildren();
      $("count").textContent = "";
      return;
    }
    $("count").textContent = res.body.length === 1 ? "1 customer found." : `${res.body.length} customers found.`;
    $("results").replaceChildren(...res.body.map(renderCustomer));
  }

  $("search").addEventListener("submit", (e) => {
    e.preventDefault();
    flash(null, "");
    const q = $("q").value.trim();
    history.replaceState(null, "", `?q=${encodeURIComponent(q)}`);
    search(q);
  });
  if ($("q").value) search($("q").value.trim());
})();
