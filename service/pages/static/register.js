// The registration form: inline validation before sending, the API's own verdict after.
"use strict";
(function () {
  const form = document.getElementById("register");
  if (!form) return;
  const launch = form.dataset.launch;
  const fields = ["email", "name", "phone", "preferred_store"];
  const formError = document.getElementById("form-error");

  function show(field, message) {
    const input = document.getElementById(field);
    const out = document.getElementById(`${field}-error`);
    if (!input || !out) return false;
    input.setAttribute("aria-invalid", message ? "true" : "false");
    out.textContent = message || "";
    out.hidden = !message;
    return true;
  }
  function check(field) {
    const input = document.getElementById(field);
    const value = input.value.trim();
    if (field === "email") {
      if (!value) return show(field, "Enter your e-mail address."), false;
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(value)) return show(field, "This does not look like an e-mail address (name@example.com)."), false;
    }
    if (field === "phone" && value && !/^\+?[\d\s().-]{6,}$/.test(value)) {
      return show(field, "Use digits, spaces and an optional leading +."), false;
    }
    show(field, "");
    return true;
  }
  for (const f of ["email", "phone"]) {
    const input = document.getElementById(f);
    input.addEventListener("blur", (e) => {
      // Leaving for the submit button: the submit checks, and an error appearing now
      // would move the button away from under the pointer.
      if (input.value && !(e.relatedTarget && e.relatedTarget.type === "submit")) check(f);
    });
    input.addEventListener("input", () => { if (input.getAttribute("aria-invalid") === "true") check(f); });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.hidden = true;
    const valid = fields.map(check).every(Boolean);
    if (!valid) {
      form.querySelector("[aria-invalid=true]").focus();
      return;
    }
    const body = {};
    for (const f of fields) {
      const v = document.getElementById(f).value.trim();
      if (v) body[f] = v;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    button.textContent = "Sending…";
    const res = await fd.api("POST", `/api/launches/${encodeURIComponent(launch)}/registrations`, body);
    button.disabled = false;
    button.textContent = "Register";
    if (res.ok) {
      document.getElementById("sent-to").textContent = body.email;
      document.getElementById("register-panel").hidden = true;
      const done = document.getElementById("check-email");
      done.hidden = false;
      done.focus();
      return;
    }
    const p = res.body || {};
    const named = p.field || (p.fields && p.fields[0]);
    if (named && show(named, p.detail && p.field ? p.detail : "Check this field.")) {
      document.getElementById(named).focus();
      return;
    }
    formError.textContent = p.detail || "Something went wrong. Please try again.";
    formError.hidden = false;
  });
})();
