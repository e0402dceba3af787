// The agent console: search, the customer's whole story across channels, and the
// actions on a reservation (move, extend pickup, resend code, cancel), each with a
// reason the API records with who and when; notes on the customer's timeline.
"use strict";
(function () {
  const root = document.getElementById("agent");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const launchNames = JSON.parse($("launch-names").textContent);
  let lastQuery = "";
  // The channel a registration came through, in words.
  const CHANNEL_WORDS = { web: "online", app: "in the app", phone: "by phone", store: "in store", admin: "by the organiser", system: "by fairdrop" };

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
  // The server words each entry (what, and by whom), naming times in the launch's zone
  // ("until Mon 7 Dec 2026, 15:27 GMT"); here the agent's own is given too.
  function describe(e) {
    const d = e.data || {};
    const until = d.ends_at || d.until || (d.until_ms && new Date(d.until_ms).toISOString());
    const named = /until \w{3} \d{1,2} \w{3} \d{4}, \d\d:\d\d \S+/;
    if (!until) return e.what;
    const mine = fd.when(until);
    const same = (m) => m.endsWith(mine.slice(mine.lastIndexOf(",") + 2));
    return e.what.replace(named, (m) => (same(m) ? m : `${m} (${mine} your time)`));
  }
  // A problem+json's words: the detail, and which field when the API names one.
  function problemText(body, fallback) {
    if (!body || !body.detail) return fallback;
    const field = body.field || (Array.isArray(body.errors) && body.errors[0] && body.errors[0].field);
    return field && !body.detail.includes(field) ? `${body.detail} (${field})` : body.detail;
  }
  // "2026-11-25T18:00" in the agent's time zone, for a datetime-local field.
  function localInput(at) {
    const pad = (n) => String(n).padStart(2, "0");
    return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
  }

  // Each action: what it sends, where, and what to say when it worked.
  const ACTIONS = {
    move: {
      path: (r) => `reservations/${r.id}/move`,
      body: (f) => ({ store_id: f.store_id.value, reason: f.reason.value.trim() }),
      done: (r, code, f, names) => `Reservation ${code} moved to ${names.stores[f.store_id.value] || f.store_id.value}.`,
    },
    extend: {
      path: (r) => `reservations/${r.id}/pickup-window`,
      body: (f) => ({ ends_at: f.ends_at.value ? new Date(f.ends_at.value).toISOString() : "", reason: f.reason.value.trim() }),
      done: (r, code, f) => `Reservation ${code} can be collected until ${fd.when(new Date(f.ends_at.value).toISOString())}.`,
    },
    resend: {
      path: (r) => `reservations/${r.id}/resend`,
      body: (f) => ({ reason: f.reason.value.trim() }),
      done: (r, code) => `The code ${code} is on its way to the customer again.`,
    },
    cancel: {
      path: (r) => `reservations/${r.id}/cancel`,
      body: (f) => ({ reason: f.reason.value.trim() }),
      done: (r, code) => `Reservation ${code} cancelled; the unit is back in stock.`,
    },
  };

  // Labels point at their fields (ids unique per reservation) so every field is named.
  function wire(form, prefix) {
    form.addEventListener("input", () => { form.querySelector(".error").hidden = true; });
    for (const label of form.querySelectorAll("label[data-for]")) {
      const field = form.elements[label.dataset.for];
      field.id = `${prefix}-${form.dataset.action}-${label.dataset.for}`;
      label.htmlFor = field.id;
    }
  }

  async function send(form, url, body, said) {
    const err = form.querySelector(".error");
    err.hidden = true;
    if ("reason" in body && body.reason.length < 3) {
      err.textContent = "Say why in a few words (at least 3 characters).";
      err.hidden = false;
      form.elements.reason.focus();
      return;
    }
    const submit = form.querySelector('[type="submit"]');
    submit.disabled = true;
    const res = await fd.api("POST", url, body);
    submit.disabled = false;
    if (!res.ok) {
      err.textContent = problemText(res.body, "That did not work. Try again.");
      err.hidden = false;
      return;
    }
    flash("ok", said());
    await search(lastQuery);  // the card and its timeline as the server now has them
  }

  function renderReservation(r, code, pickup, names) {
    const node = $("reservation-tpl").content.firstElementChild.cloneNode(true);
    fill(node, "code", code);
    const badge = fill(node, "status", r.status);
    badge.className = `badge ${r.status}`;
    fill(node, "what", `${names.skus[r.sku_id] || r.sku_id} at ${names.stores[r.store_id] || r.store_id}`);
    const ends = pickup && pickup.ends_at;
    fill(node, "window", ends ? `Collect until ${fd.when(ends)}${pickup.extended ? " (extended)" : ""}` : "").hidden = !ends;
    const actions = node.querySelector('[data-f="actions"]');
    actions.hidden = r.status !== "confirmed";
    const openers = actions.querySelectorAll("[data-open]");
    const words = { move: "Move reservation", extend: "Extend pickup of", resend: "Resend code of", cancel: "Cancel reservation" };
    const select = node.querySelector('select[name="store_id"]');
    for (const [id, name] of Object.entries(names.stores)) {
      if (id === r.store_id) continue;
      select.appendChild(new Option(name, id));
    }
    if (select.options.length === 0) actions.querySelector('[data-open="move"]').hidden = true;
    for (const form of node.querySelectorAll(".action-form")) {
      const kind = form.dataset.action;
      const action = ACTIONS[kind];
      const opener = actions.querySelector(`[data-open="${kind}"]`);
      wire(form, `r${r.id}`);
      opener.setAttribute("aria-label", `${words[kind]} ${code}`);
      opener.addEventListener("click", () => {
        actions.hidden = true;
        form.hidden = false;
        if (kind === "extend" && !form.elements.ends_at.value) {
          const from = Math.max(Date.parse(ends || "") || 0, Date.now());
          form.elements.ends_at.value = localInput(new Date(from + 86400000));
        }
        form.querySelector("select, input, textarea").focus();
      });
      form.querySelector('[data-f="back"]').addEventListener("click", () => {
        form.hidden = true;
        form.querySelector(".error").hidden = true;
        actions.hidden = false;
        opener.focus();
      });
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        const url = `/api/agent/launches/${encodeURIComponent(r.launch_id)}/${action.path(r)}`;
        send(form, url, action.body(form.elements), () => action.done(r, code, form.elements, names));
      });
    }
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
    fill(node, "registered", `${fd.when(g.created_at)} ${CHANNEL_WORDS[g.channel] || `(${g.channel})`}`);
    fill(node, "verified", g.verified_at ? fd.when(g.verified_at) : "not yet");
    const box = node.querySelector('[data-f="reservations"]');
    if (c.reservations.length === 0) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = "No reservations.";
      box.appendChild(p);
    }
    const names = launchNames[g.launch_id] || { stores: {}, skus: {} };
    c.reservations.forEach((r, i) => box.appendChild(renderReservation(r, c.codes[i], c.pickup[i], names)));
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
      ch.textContent = e.by;
      what.appendChild(ch);
      li.append(t, what);
      list.appendChild(li);
    }
    const note = node.querySelector(".note-form");
    wire(note, `g${g.id}`);
    note.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = note.elements.note.value.trim();
      const err = note.querySelector(".error");
      if (!text) {
        err.textContent = "Write the note first.";
        err.hidden = false;
        note.elements.note.focus();
        return;
      }
      const url = `/api/agent/launches/${encodeURIComponent(g.launch_id)}/registrations/${g.id}/notes`;
      send(note, url, { note: text }, () => "Note added to the timeline.");
    });
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
