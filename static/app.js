// Page-independent behaviour: keyboard shortcuts, the shortcut list, copy buttons, confirmations.
//
// - "g" then a letter goes to the navigation link with data-goto="<letter>" (g d = datasets ...).
// - "?" opens the shortcut list; "/" focuses the page's search field (or its first field); Esc leaves a field.
// - An element with data-key="n" is clicked (or focused, for inputs) when that key is pressed outside a
//   text field; pages declare their own shortcuts this way and the list shows them (title or text).
// - <button data-copy="#id"> copies the text (or value) of #id; <form data-confirm="..."> asks first.
// - window.sftlab.csrf() returns the CSRF token for fetch/XHR (send it as the X-CSRF-Token header).
(() => {
  "use strict";
  const meta = document.querySelector('meta[name="csrf-token"]');
  window.sftlab = { csrf: () => (meta ? meta.content : "") };

  const typing = (t) =>
    t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  let gPressed = 0;

  const dialog = () => document.getElementById("keys");
  function toggleKeys() {
    const d = dialog();
    if (!d) return;
    if (d.open) { d.close(); return; }
    const list = document.getElementById("page-keys");
    if (list) {
      list.replaceChildren();
      const seen = new Set();
      for (const el of document.querySelectorAll("main [data-key]")) {
        const k = el.getAttribute("data-key");
        if (seen.has(k)) continue;
        seen.add(k);
        const row = document.createElement("div");
        const kbd = document.createElement("span");
        kbd.className = "kbd";
        kbd.textContent = k;
        row.append(kbd, " ", (el.getAttribute("title") || el.textContent || el.getAttribute("placeholder") || "").trim());
        list.append(row);
      }
    }
    d.showModal();
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (ev.key === "Escape" && typing(t)) { t.blur(); return; }
    if (typing(t)) return;
    if (dialog() && dialog().open && ev.key !== "?") return;
    const now = Date.now();
    if (gPressed && now - gPressed < 1500) {
      gPressed = 0;
      const link = document.querySelector(`[data-goto="${CSS.escape(ev.key)}"]`);
      if (link) { ev.preventDefault(); link.click(); }
      return;
    }
    if (ev.key === "g" && !document.querySelector('main [data-key="g"]')) { gPressed = now; return; }
    if (ev.key === "?") { ev.preventDefault(); toggleKeys(); return; }
    const el = document.querySelector(`[data-key="${CSS.escape(ev.key)}"]`);
    if (el) {
      ev.preventDefault();
      if (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT") el.focus(); else el.click();
      return;
    }
    if (ev.key === "/") {
      const field = document.querySelector('main input[type="search"], main input[type="text"], main textarea');
      if (field) { ev.preventDefault(); field.focus(); }
    }
  });

  document.addEventListener("click", (ev) => {
    const open = ev.target.closest("#keys-open");
    if (open) { toggleKeys(); return; }
    const btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    const src = document.querySelector(btn.getAttribute("data-copy"));
    if (!src) return;
    const text = "value" in src && src.value !== undefined ? src.value : src.textContent;
    const done = () => {
      const old = btn.textContent;
      btn.textContent = btn.getAttribute("data-copied") || "✓";
      setTimeout(() => { btn.textContent = old; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text.trim()).then(done, () => {});
    } else {
      // Plain http on a LAN address is not a secure context: fall back to selecting the text.
      const ta = document.createElement("textarea");
      ta.value = text.trim();
      document.body.append(ta);
      ta.select();
      try { document.execCommand("copy"); done(); } finally { ta.remove(); }
    }
  });

  document.addEventListener("submit", (ev) => {
    const form = ev.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) ev.preventDefault();
  });
})();
