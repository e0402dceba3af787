// The launch console: the times' order checked as they are typed (the server checks it
// again with the API's own rule, `service/admin/timeline.py`), and a copy button.
"use strict";
(function () {
  // The same walk as timeline.order_problems: each set time against the set time before
  // it; strictly after if any step between is strict (data-strict), else no earlier.
  const times = [...document.querySelectorAll("input[data-order]")]
    .sort((a, b) => Number(a.dataset.order) - Number(b.dataset.order));
  function problems() {
    const found = new Map();
    let previous = null;
    let strict = false;
    for (const input of times) {
      strict = strict || input.dataset.strict === "1";
      if (!input.value) continue;
      if (previous && (input.value < previous.value || (strict && input.value === previous.value))) {
        const how = strict ? "after" : "no earlier than";
        const words = input.dataset.words;
        const first = previous.dataset.words;
        found.set(input, `${words[0].toUpperCase()}${words.slice(1)} must be ${how} ${first}.`);
        if (!found.has(previous)) found.set(previous, `${first[0].toUpperCase()}${first.slice(1)} is set after ${words}.`);
      }
      previous = input;
      strict = false;
    }
    return found;
  }
  // Once a time is changed, the script's words replace what the server said of the times.
  function check() {
    const found = problems();
    for (const input of times) {
      const note = document.getElementById(`e-${input.name}`);
      const message = found.get(input) || "";
      input.toggleAttribute("aria-invalid", Boolean(message));
      if (message) input.setAttribute("aria-invalid", "true");
      note.textContent = message;
      note.hidden = !message;
    }
  }
  for (const input of times) {
    input.addEventListener("input", check);
    input.addEventListener("change", check);
  }

  for (const button of document.querySelectorAll("button[data-copy]")) {
    const field = document.getElementById(button.dataset.copy);
    const said = document.getElementById("copied");
    if (!field || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(field.value);
        said.textContent = "Copied.";
      } catch (e) {
        field.select();
        said.textContent = "Select the link and copy it.";
      }
    });
  }
})();
