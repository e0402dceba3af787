// Shared by every page: local times, and one way to call the JSON API.
"use strict";
(function () {
  // A time always with its zone ("Tue 3 Dec, 18:00 CET"), so nobody wonders which 18:00
  // is meant. On a launch's pages, in the launch's zone (`data-zone`, where the store's
  // clock is), with the reader's own time beside it when theirs differs; elsewhere the
  // reader's own.
  const opts = {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
    timeZoneName: "short",
  };
  const fmt = new Intl.DateTimeFormat(undefined, opts);
  const zoned = {};
  function inZone(zone) {
    try {
      return zoned[zone] || (zoned[zone] = new Intl.DateTimeFormat(undefined, { ...opts, timeZone: zone }));
    } catch (e) { return fmt; } // a zone this browser does not know: the reader's own
  }
  function zoneText(at, zone) {
    const there = inZone(zone).formatToParts(at);
    const here = fmt.formatToParts(at);
    const clock = (parts) => parts.filter((p) => p.type !== "timeZoneName").map((p) => p.value).join("");
    const text = there.map((p) => p.value).join("");
    if (clock(there) === clock(here)) return text;
    const sameDay = ["weekday", "day", "month"].every((t) =>
      (there.find((p) => p.type === t) || {}).value === (here.find((p) => p.type === t) || {}).value);
    const mine = sameDay
      ? new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", timeZoneName: "short" }).format(at)
      : fmt.format(at);
    return `${text} (${mine} your time)`;
  }
  function localize(root) {
    for (const el of (root || document).querySelectorAll("time[data-local]")) {
      const at = Date.parse(el.getAttribute("datetime") || "");
      if (Number.isNaN(at)) continue;
      const zone = el.closest("[data-zone]");
      el.textContent = zone ? zoneText(new Date(at), zone.dataset.zone) : fmt.format(new Date(at));
    }
  }
  // Calls the JSON API with the page's cookies. Resolves to {ok, status, body};
  // a failure's body is the RFC 9457 problem (type, detail, field(s)).
  async function api(method, url, body) {
    const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(url, init);
    } catch (e) {
      return { ok: false, status: 0, body: { type: "network", detail: "No connection. Check your network; we will keep trying." } };
    }
    let data = null;
    const text = await res.text();
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
    return { ok: res.ok, status: res.status, body: data, retryAfter: retryAfter(res.headers.get("Retry-After")) };
  }
  // Retry-After in seconds (it may be a number of seconds or an HTTP date); null if none.
  function retryAfter(value) {
    if (!value) return null;
    const seconds = Number(value);
    if (Number.isFinite(seconds)) return Math.max(0, seconds);
    const at = Date.parse(value);
    return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
  }
  function problemType(body) {
    const t = (body && body.type) || "";
    return t.slice(t.lastIndexOf("/") + 1);
  }
  const days = (n) => `${n} ${n === 1 ? "day" : "days"}`;
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "unknown";
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    const m = Math.round(s / 60);
    if (m < 60) return `about ${m} min`;
    const h = Math.floor(m / 60);
    if (h < 24) return `about ${h} h ${m % 60} min`;
    const hours = Math.round(m / 60);
    return hours % 24 ? `about ${days(Math.floor(hours / 24))} ${hours % 24} h` : `about ${days(hours / 24)}`;
  }
  // A countdown: "4:05", "3:04:05", and a day or more away "2 days 3:04:05".
  function clock(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    const m = Math.floor(s / 60);
    const h = Math.floor(m / 60);
    const pad = (n) => String(n).padStart(2, "0");
    if (h >= 24) return `${days(Math.floor(h / 24))} ${h % 24}:${pad(m % 60)}:${pad(s % 60)}`;
    return h > 0 ? `${h}:${pad(m % 60)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
  }
  function when(iso) {
    const at = Date.parse(iso || "");
    return Number.isNaN(at) ? "" : fmt.format(new Date(at));
  }
  window.fd = { api, problemType, duration, clock, when, localize };
  localize(document);
})();
