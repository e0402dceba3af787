// The pickup desk: a scanner types the code and presses Enter, so the code field is
// a plain form. One Collect button; a second desk is told when and by whom.
"use strict";
(function () {
  const desk = document.getElementById("desk");
  if (!desk || !desk.dataset.store) return;
  const $ = (id) => document.getElementById(id);
  const store = desk.dataset.store;
  const base = `/api/staff/launches/${encodeURIComponent(desk.dataset.launch)}`;
  const scope = `?store=${encodeURIComponent(store)}`;
  const skew = Number(desk.dataset.nowMs) - Date.now(); // server clock minus ours
  let shown = null;

  // The reservation's own window (an agent may have extended it), else the launch's.
  function window_(card) {
    const from = fd.when(card.pickup_starts_at || desk.dataset.pickupFrom);
    const until = fd.when(card.pickup_ends_at || desk.dataset.pickupUntil);
    const extended = card.pickup_extended ? " (extended)" : "";
    if (from && until) return `${from} – ${until}${extended}`;
    if (from) return `from ${from}`;
    if (until) return `until ${until}${extended}`;
    return "any time the store is open";
  }
  // Whether the window is open now: before it, or after it, the desk may not hand over.
  function outside(card) {
    const now = Date.now() + skew;
    const from = Date.parse(card.pickup_starts_at || desk.dataset.pickupFrom || "");
    const until = Date.parse(card.pickup_ends_at || desk.dataset.pickupUntil || "");
    if (!Number.isNaN(from) && now < from) return `Pickup opens ${fd.when(new Date(from).toISOString())}: do not hand it over before then.`;
    if (!Number.isNaN(until) && now >= until) return `The pickup window ended ${fd.when(new Date(until).toISOString())}: this reservation can no longer be collected here.`;
    return null;
  }
  function note(kind, text) {
    const el = $("result-note");
    el.hidden = !text;
    el.className = `notice ${kind}`;
    el.textContent = text || "";
  }
  function showCard(card) {
    shown = card;
    $("result").hidden = false;
    $("result").className = `card result-card ${card.status}`;
    $("result-name").textContent = card.customer_name || "(no name given: check the e-mail on their phone)";
    $("result-code").textContent = card.code_display;
    $("result-sku").textContent = card.sku_name;
    $("result-status").textContent = card.status;
    $("result-status").className = `badge ${card.status}`;
    $("result-created").textContent = fd.when(card.created_at);
    $("result-window").textContent = window_(card);
    $("collect").hidden = card.status !== "confirmed";
    const closed = card.status === "confirmed" ? outside(card) : null;
    $("collect").disabled = Boolean(closed);
    if (closed) {
      note("warn", closed);
    } else if (card.status === "collected") {
      note("warn", `Already collected ${fd.when(card.collected_at)} by ${card.collected_by}. Do not hand over another unit.`);
    } else if (card.status === "cancelled") {
      note("bad", "This reservation was cancelled. Do not hand over a unit.");
    } else {
      note(null, "");
    }
  }

  $("lookup").addEventListener("submit", async (e) => {
    e.preventDefault();
    const typed = $("code").value.trim();
    const err = $("code-error");
    err.hidden = true;
    $("code").setAttribute("aria-invalid", "false");
    if (!typed) return;
    const res = await fd.api("GET", `${base}/reservations/${encodeURIComponent(typed)}${scope}`);
    if (res.ok) {
      showCard(res.body);
      $("collect").hidden || $("collect").disabled || $("collect").focus();
      return;
    }
    $("result").hidden = true;
    shown = null;
    err.textContent = res.status === 404 ? "No reservation with this code at this store." : (res.body && res.body.detail) || "Lookup failed.";
    err.hidden = false;
    $("code").setAttribute("aria-invalid", "true");
    $("code").select();
  });

  $("collect").addEventListener("click", async () => {
    if (!shown) return;
    const button = $("collect");
    button.disabled = true;
    const res = await fd.api("POST", `${base}/reservations/${encodeURIComponent(shown.code)}/collect${scope}`);
    button.disabled = Boolean(outside(shown));
    if (res.ok) {
      showCard(res.body);
      note("ok", "Collected. Hand the unit over.");
    } else if (fd.problemType(res.body) === "already-collected") {
      showCard({ ...shown, status: "collected", collected_at: res.body.collected_at, collected_by: res.body.collected_by });
    } else {
      note("bad", (res.body && res.body.detail) || "Could not mark it collected.");
    }
    refresh();
    $("code").value = "";
    $("code").focus();
  });

  async function refresh() {
    const res = await fd.api("GET", `${base}/pickups${scope}`);
    $("list-live").className = res.ok ? "live" : "live offline";
    if (!res.ok) return;
    const list = res.body;
    $("n-expected").textContent = list.expected;
    $("n-collected").textContent = list.collected;
    $("n-outstanding").textContent = list.outstanding;
    const rows = list.reservations.map((c) => {
      const tr = document.createElement("tr");
      const cells = [c.customer_name || "–", c.code_display, c.sku_name, c.status];
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        td.dataset.label = ["Name", "Code", "Model", "Status"][i];
        if (i === 3) {
          const b = document.createElement("span");
          b.className = `badge ${text}`;
          b.textContent = text;
          td.appendChild(b);
        } else {
          td.textContent = text;
          if (i === 1) td.className = "mono";
        }
        tr.appendChild(td);
      });
      return tr;
    });
    $("pickups").replaceChildren(...rows);
  }
  refresh();
  setInterval(refresh, 10000);
})();
