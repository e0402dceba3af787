// The waiting room: check in, follow the status live (server-sent events, polling
// as the fallback at the pace the server asks), then pick, hold and confirm.
// Every rule lives in the API; this only shows what it says.
"use strict";
(function () {
  const room = document.getElementById("room");
  if (!room) return;
  const launch = room.dataset.launch;
  const base = `/api/launches/${encodeURIComponent(launch)}`;
  const names = JSON.parse(document.getElementById("names").textContent);
  const skew = Number(room.dataset.nowMs) - Date.now(); // server clock minus ours
  const serverNow = () => Date.now() + skew;
  const holdKey = `fd-hold:${launch}`;
  const holdSeconds = Number(room.dataset.holdSeconds);
  const $ = (id) => document.getElementById(id);
  const views = ["join", "loading", "notopen", "prequeue", "waiting", "turn", "hold", "soldout", "lapsed", "left", "closed"];
  let current = "loading";
  let source = null;
  let pollTimer = null;
  let pollEvery = 0; // the last next_poll_seconds the service asked of us
  let availTimer = null;
  let tick = null;
  let status = null;
  let hold = loadHold();
  let refreshing = Promise.resolve();
  let turnOver = null; // set when a hold of this turn ended: the API's admission is used up

  const title = document.title;
  const headline = { turn: "Your turn!", hold: "Held for you", soldout: "Sold out", lapsed: "Turn ended", left: "Left the queue" };
  function show(name) {
    const changed = name !== current;
    current = name;
    for (const v of views) $(`view-${v}`).hidden = v !== name;
    showLeave(name);
    if (name !== "turn") stopAvailability();
    document.title = headline[name] ? `${headline[name]} · ${title}` : title;
    if (changed && headline[name]) {
      // A change that needs the shopper: move focus there, so screen readers say it.
      const section = $(`view-${name}`);
      section.tabIndex = -1;
      section.focus();
    }
  }
  function flash(kind, text) {
    const el = $("flash");
    if (!text) { el.hidden = true; return; }
    el.className = `notice ${kind}`;
    el.textContent = text;
    el.hidden = false;
  }
  function live(mode) {
    const el = $("live");
    el.hidden = false;
    el.className = `live ${mode}`;
    el.textContent = { sse: "Live", polling: "Updating", offline: "Reconnecting…" }[mode];
  }
  function loadHold() {
    try {
      const h = JSON.parse(localStorage.getItem(holdKey) || "null");
      return h && h.expires_ms > serverNow() ? h : null;
    } catch (e) { return null; }
  }
  function saveHold(h) {
    hold = h;
    if (h) localStorage.setItem(holdKey, JSON.stringify(h)); else localStorage.removeItem(holdKey);
  }

  // ---- joining -------------------------------------------------------------
  async function checkIn() {
    const res = await fd.api("POST", `${base}/queue/checkin`);
    if (res.ok) return follow();
    const type = fd.problemType(res.body);
    if (type === "left-queue") {
      setMessage("left", res.body.detail);
      show("left");
    } else if (type === "checkin-closed") {
      const over = ["selling", "sold_out", "closed", "pickup", "archived"].includes(room.dataset.state);
      show(over ? "closed" : "notopen");
      setTimeout(checkIn, over ? 15000 : untilOpen());
    } else if (res.status === 429) {
      setTimeout(checkIn, 1000 * waitAsked(res, 5));
    } else if (res.status === 401 || res.status === 403) {
      show("join");
    } else {
      flash("warn", res.body && res.body.detail ? res.body.detail : "We could not reach the waiting room. Retrying…");
      setTimeout(checkIn, 1000 * waitAsked(res, 5));
    }
  }

  // How long the service asked us to wait before asking again (its Retry-After, as a
  // crowd turned away at the door is told, or the problem's retry_after), else `fallback`.
  function waitAsked(res, fallback) {
    return res.retryAfter || Number(res.body && res.body.retry_after) || fallback;
  }

  // Until the announced opening, wait for it (spread over a second, so the room is not
  // asked by everyone at once); once it is due, or opened by hand, ask every 2 s.
  function untilOpen() {
    const left = Date.parse(room.dataset.checkinOpens || "") - serverNow();
    return left > 0 ? Math.min(left + Math.random() * 1000, 15000) : 2000;
  }

  // ---- following the status ------------------------------------------------
  function follow() {
    if (window.EventSource) {
      source = new EventSource(`${base}/queue/events`);
      source.addEventListener("status", (e) => { live("sse"); apply(JSON.parse(e.data)); });
      source.onerror = () => {
        // The stream broke (or is not allowed here): poll at the server's pace instead.
        source.close();
        source = null;
        poll();
      };
    } else {
      poll();
    }
  }
  async function poll() {
    clearTimeout(pollTimer);
    const res = await fd.api("GET", `${base}/queue/status`);
    let next = 5;
    if (res.ok) {
      live("polling");
      apply(res.body);
      next = pollEvery = res.body.status.next_poll_seconds;
    } else if (res.status === 401) {
      return checkIn(); // the ticket went stale: the same place comes back
    } else {
      // Turned away (429, 503): not sooner than asked, nor than we would have polled.
      live("offline");
      next = Math.max(pollEvery, waitAsked(res, res.status === 429 ? 10 : 5));
    }
    if (!["closed", "lapsed", "done", "left"].includes(status && status.state)) {
      pollTimer = setTimeout(poll, next * 1000);
    }
  }

  function setMessage(view, text) {
    const el = $(`view-${view}`).querySelector("[data-message]");
    if (el) el.textContent = text;
  }

  function apply(out) {
    if (out.ticket && source) {
      // The draw gave us a place: a plain status call stores the fresh ticket in our
      // cookie (a stream cannot set cookies), so holds carry the drawn rank.
      refreshing = fd.api("GET", `${base}/queue/status`);
    }
    status = out.status;
    const s = status;
    if (hold && current === "hold") return; // a live hold is shown until it is settled
    if (hold && s.state === "admitted") { showHold(); return; }
    if (turnOver && s.state === "admitted") {
      setMessage("lapsed", turnOver);
      show("lapsed");
      return;
    }
    switch (s.state) {
      case "prequeue":
        setMessage("prequeue", s.message);
        show("prequeue");
        startPrequeueClock();
        break;
      case "waiting": {
        $("position").textContent = s.position.toLocaleString();
        $("ahead").textContent = s.ahead.toLocaleString();
        $("eta").textContent = fd.duration(s.eta_seconds);
        $("eta").dataset.seconds = s.eta_seconds === null ? "" : String(s.eta_seconds);
        $("qlen").textContent = s.queue_length.toLocaleString();
        const admitted = Math.max(0, s.rank - s.ahead);
        $("progress").value = s.rank > 0 ? admitted / s.rank : 1;
        setMessage("waiting", s.message);
        show("waiting");
        break;
      }
      case "admitted":
        setMessage("turn", s.message);
        if (current !== "turn") { show("turn"); startAvailability(); }
        startTurnClock();
        break;
      case "sold_out":
        setMessage("soldout", s.message);
        $("so-position").textContent = s.position ? s.position.toLocaleString() : "–";
        show("soldout");
        break;
      case "lapsed":
      case "done": // the turn ended early: its hold confirmed, let go or run out
        setMessage("lapsed", s.message);
        show("lapsed");
        stopStream();
        break;
      case "left":
        setMessage("left", s.message);
        show("left");
        stopStream();
        break;
      case "closed":
        show("closed");
        stopStream();
        break;
    }
  }
  function stopStream() {
    if (source) { source.close(); source = null; }
    clearTimeout(pollTimer);
  }

  // ---- clocks --------------------------------------------------------------
  function every(fn) {
    clearInterval(tick);
    fn();
    tick = setInterval(fn, 250);
  }
  function startPrequeueClock() {
    const at = Date.parse(room.dataset.saleStarts || "");
    if (Number.isNaN(at)) {
      $("pre-countdown").textContent = "Soon";
      $("pre-countdown-label").textContent = "The order is drawn when the sale starts";
      return;
    }
    every(() => {
      const left = at - serverNow();
      $("pre-countdown").textContent = left > 0 ? fd.clock(left) : "Drawing…";
    });
  }
  function startTurnClock() {
    const until = status && status.admitted_until_ms;
    every(() => {
      if (!until) { $("turn-left").textContent = ""; return; }
      const left = until - serverNow();
      $("turn-left").textContent = left > 0 ? `You have ${fd.clock(left)} to place a hold.` : "Your time to choose is up.";
    });
  }

  // ---- choosing ------------------------------------------------------------
  async function loadAvailability() {
    const res = await fd.api("GET", `${base}/`);
    if (!res.ok) return;
    renderOptions(res.body.availability);
  }
  function startAvailability() {
    loadAvailability();
    clearInterval(availTimer);
    availTimer = setInterval(loadAvailability, 3000);
  }
  function stopAvailability() { clearInterval(availTimer); availTimer = null; }

  function renderOptions(availability) {
    const box = $("options");
    const chosen = box.querySelector("input:checked");
    const picked = chosen ? chosen.value : null;
    const byStore = new Map();
    for (const a of availability) {
      if (!byStore.has(a.store_id)) byStore.set(a.store_id, []);
      byStore.get(a.store_id).push(a);
    }
    const frag = document.createDocumentFragment();
    let first = null;
    let preferred = null; // the first unit left at the store chosen at sign-up
    for (const [store, rows] of byStore) {
      const fs = document.createElement("fieldset");
      fs.className = "options";
      const legend = document.createElement("legend");
      legend.textContent = names.stores[store] || store;
      if (store === room.dataset.preferredStore) {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = "your preferred store";
        legend.appendChild(tag);
      }
      fs.appendChild(legend);
      for (const a of rows) {
        const value = `${a.store_id}|${a.sku_id}`;
        const label = document.createElement("label");
        label.className = "option";
        const input = document.createElement("input");
        input.type = "radio";
        input.name = "choice";
        input.value = value;
        input.disabled = a.available <= 0;
        input.checked = value === picked && !input.disabled;
        if (!input.disabled && !first) first = input;
        if (!input.disabled && !preferred && store === room.dataset.preferredStore) preferred = input;
        const what = document.createElement("span");
        what.className = "what";
        what.textContent = names.skus[a.sku_id] || a.sku_id;
        const avail = document.createElement("span");
        avail.className = `avail ${a.available <= 0 ? "none" : a.available < 5 ? "few" : "many"}`;
        avail.textContent = a.available <= 0 ? "None left" : `${a.available} left`;
        label.append(input, what, avail);
        fs.appendChild(label);
      }
      frag.appendChild(fs);
    }
    box.replaceChildren(frag);
    if (!box.querySelector("input:checked") && (preferred || first)) (preferred || first).checked = true;
    $("hold-button").disabled = !box.querySelector("input:checked");
  }

  $("picker").addEventListener("submit", async (e) => {
    e.preventDefault();
    const chosen = $("options").querySelector("input:checked");
    if (!chosen) return;
    const [store_id, sku_id] = chosen.value.split("|");
    const button = $("hold-button");
    button.disabled = true;
    await refreshing;
    const res = await fd.api("POST", `${base}/holds`, { store_id, sku_id });
    button.disabled = false;
    if (res.ok) {
      flash(null);
      saveHold({ hold_id: res.body.hold_id, expires_ms: res.body.expires_ms, store_id, sku_id });
      showHold();
      return;
    }
    const type = fd.problemType(res.body);
    const messages = {
      "sold-out": "That one has just gone. Choose another: the list is up to date.",
      "limit-reached": "You already hold or have reserved as many as one customer may.",
      "not-admitted": "It is not your turn any more.",
    };
    flash(type === "limit-reached" ? "info" : "warn", messages[type] || (res.body && res.body.detail) || "That did not work. Try again.");
    if (type === "limit-reached") {
      const link = document.createElement("a");
      link.href = `/launches/${encodeURIComponent(launch)}/reservation`;
      link.textContent = " See your reservation.";
      $("flash").appendChild(link);
    }
    loadAvailability();
  });

  // ---- holding -------------------------------------------------------------
  function showHold() {
    show("hold");
    $("hold-what").textContent = names.skus[hold.sku_id] || hold.sku_id;
    $("hold-where").textContent = `at ${names.stores[hold.store_id] || hold.store_id}`;
    every(() => {
      // Never more than the hold's length: our estimate of the server's clock can be
      // a little behind.
      const left = hold ? Math.min(hold.expires_ms - serverNow(), holdSeconds * 1000) : 0;
      $("hold-countdown").textContent = fd.clock(left);
      $("hold-countdown").classList.toggle("urgent", left < 30000);
      if (hold && left <= 0) expired();
    });
  }
  function expired() {
    saveHold(null);
    clearInterval(tick);
    flash("bad", "Your hold expired and the unit went to the next person.");
    turnOver = "A turn covers one hold: when it ends, the next person in line gets the unit.";
    if (status) { current = "loading"; apply({ status }); }
  }

  $("confirm-button").addEventListener("click", async () => {
    if (!hold) return;
    const button = $("confirm-button");
    button.disabled = true;
    button.textContent = "Confirming…";
    const res = await fd.api("POST", `${base}/holds/${encodeURIComponent(hold.hold_id)}/confirm`);
    if (res.ok) {
      saveHold(null);
      window.location.assign(`/launches/${encodeURIComponent(launch)}/reservation`);
      return;
    }
    button.disabled = false;
    button.textContent = "Confirm reservation";
    const type = fd.problemType(res.body);
    if (type === "hold-expired" || type === "hold-not-found") return expired();
    flash("bad", (res.body && res.body.detail) || "We could not confirm. Try again.");
  });

  $("release-button").addEventListener("click", async () => {
    if (!hold) return;
    await fd.api("DELETE", `${base}/holds/${encodeURIComponent(hold.hold_id)}`);
    saveHold(null);
    clearInterval(tick);
    flash("info", "You let it go. The unit is back for the next person in line.");
    turnOver = "A turn covers one hold: you let yours go, so your turn has ended.";
    if (status) { current = "loading"; apply({ status }); }
  });

  // ---- leaving -------------------------------------------------------------
  // Offered while waiting or in a turn not yet used: the place goes to those behind
  // at once, for good, so it asks twice.
  const leaveWords = {
    turn: ["Handing back your turn lets the next person in at once. It is for good: you cannot queue again for this sale.", "Hand back my turn", "Hand back your turn for good?", "Yes, hand it back"],
    other: ["Leaving gives your place to the people behind you at once. It is for good: you cannot queue again for this sale.", "Leave the queue", "Leave the queue for good?", "Yes, leave"],
  };
  function showLeave(view) {
    const box = $("leave-box");
    const offered = ["prequeue", "waiting", "soldout", "turn"].includes(view);
    if (!offered) { box.hidden = true; return; }
    const [why, ask, question, yes] = leaveWords[view === "turn" ? "turn" : "other"];
    $("leave-why").textContent = why;
    $("leave-button").textContent = ask;
    $("leave-question").textContent = question;
    $("leave-yes").textContent = yes;
    if (box.hidden) { $("leave-ask").hidden = false; $("leave-sure").hidden = true; }
    box.hidden = false;
  }
  $("leave-button").addEventListener("click", () => {
    $("leave-ask").hidden = true;
    $("leave-sure").hidden = false;
    $("leave-yes").focus();
  });
  $("leave-no").addEventListener("click", () => {
    $("leave-sure").hidden = true;
    $("leave-ask").hidden = false;
    $("leave-button").focus();
  });
  $("leave-yes").addEventListener("click", async () => {
    const button = $("leave-yes");
    button.disabled = true;
    const res = await fd.api("POST", `${base}/queue/leave`);
    button.disabled = false;
    if (res.ok) {
      flash(null);
      stopStream();
      status = null;
      apply(res.body);
      return;
    }
    $("leave-sure").hidden = true;
    $("leave-ask").hidden = false;
    flash("warn", (res.body && res.body.detail) || "That did not work. Try again.");
  });

  // ---- start ---------------------------------------------------------------
  if (room.dataset.hasTicket === "1") follow();
  else if (room.dataset.hasShopper === "1") checkIn();
  else show("join");
})();
