// Page-independent behaviour: keyboard shortcuts listed in data-key attributes.
// An element with data-key="n" is clicked (or focused, for inputs) when that key is pressed outside a text field.
document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
  const el = document.querySelector(`[data-key="${CSS.escape(ev.key)}"]`);
  if (!el) return;
  ev.preventDefault();
  if (el.tagName === "INPUT" || el.tagName === "TEXTAREA") el.focus(); else el.click();
});
