// The launch and sweep forms: Ctrl+Enter (or Cmd+Enter) launches from anywhere in the form, and the
// estimate is marked stale when the form changes after it was computed (it costs seconds, so it runs on
// the Estimate button or "e", not on every keystroke).
(() => {
  "use strict";
  const form = document.getElementById("launch-form");
  if (!form) return;
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      form.requestSubmit(document.getElementById("launch-button") || undefined);
    }
  });
  form.addEventListener("change", () => {
    const est = document.getElementById("estimate");
    if (est && est.querySelector("table")) est.classList.add("stale");
  });
  // A problem the estimate found blocks Launch until the form changes; a fix button sets the field it names
  // and estimates again.
  const blockLaunch = () => {
    const button = document.getElementById("launch-button");
    if (button) button.disabled = !!document.getElementById("estimate-problem");
    // A problem shown beside its field must be seen: open the folded section that holds it.
    for (const slot of document.querySelectorAll(".field-problem.error")) {
      const section = slot.closest("details");
      if (section) section.open = true;
    }
  };
  document.body.addEventListener("htmx:afterSwap", blockLaunch);
  form.addEventListener("change", () => {
    const button = document.getElementById("launch-button");
    if (button) button.disabled = false;
  });
  form.addEventListener("click", (ev) => {
    const fix = ev.target.closest("button.fix");
    if (!fix) return;
    const input = form.querySelector(`[name="${fix.dataset.fixField}"]`);
    if (!input) return;
    input.value = fix.dataset.fixValue;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    document.getElementById("estimate-button")?.click();
  });
  blockLaunch();
  // A double click on Launch must not create two runs.
  form.addEventListener("submit", () => {
    const button = document.getElementById("launch-button");
    if (button) setTimeout(() => { button.disabled = true; }, 0);
  });
})();
