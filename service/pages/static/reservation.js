// Cancelling a reservation, after saying plainly what it means.
"use strict";
(function () {
  for (const box of document.querySelectorAll(".cancel-box")) {
    const step = (name) => box.querySelector(`[data-step="${name}"]`);
    const error = box.querySelector(".error");
    step("ask").addEventListener("click", () => {
      step("ask").hidden = true;
      step("confirm").hidden = false;
      step("no").focus();
    });
    step("no").addEventListener("click", () => {
      step("confirm").hidden = true;
      step("ask").hidden = false;
      step("ask").focus();
    });
    step("yes").addEventListener("click", async () => {
      step("yes").disabled = true;
      const url = `/api/launches/${encodeURIComponent(box.dataset.launch)}/reservations/${box.dataset.reservation}/cancel`;
      const res = await fd.api("POST", url);
      if (res.ok) {
        window.location.reload();
        return;
      }
      step("yes").disabled = false;
      error.textContent = (res.body && res.body.detail) || "We could not cancel it. Try again.";
      error.hidden = false;
    });
  }
})();
