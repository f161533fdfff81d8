// The upload page: sends the chosen file as a raw streaming body with XHR (so the browser never builds a
// multipart copy), shows progress from xhr.upload.onprogress, then goes to the mapping step.
(() => {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = form.querySelector("input[type=file]");
  const bar = document.getElementById("upload-bar");
  const label = document.getElementById("upload-label");
  const error = document.getElementById("upload-error");
  const limit = Number(form.dataset.limit || 0);
  const fmt = (n) => (n >= 1 << 30 ? (n / (1 << 30)).toFixed(2) + " GiB" : n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + " MiB" : (n / 1024).toFixed(0) + " KiB");

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const file = input.files && input.files[0];
    if (!file) { error.textContent = form.dataset.msgChoose; return; }
    if (limit && file.size > limit) { error.textContent = form.dataset.msgTooLarge; return; }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/uploads?filename=" + encodeURIComponent(file.name));
    const meta = document.querySelector('meta[name="csrf-token"]');
    xhr.setRequestHeader("X-CSRF-Token", meta ? meta.content : "");
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      bar.style.width = (100 * e.loaded / e.total).toFixed(1) + "%";
      label.textContent = fmt(e.loaded) + " / " + fmt(e.total);
    };
    xhr.onload = () => {
      let data = {};
      try { data = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 201 && data.mapping_url) {
        const target = form.dataset.target;
        window.location = data.mapping_url + (target ? "?target=" + target : "");
      } else {
        error.textContent = (data && data.detail) || ("HTTP " + xhr.status);
        bar.style.width = "0";
      }
    };
    xhr.onerror = () => { error.textContent = form.dataset.msgNetwork; };
    form.querySelector("button").disabled = true;
    xhr.onloadend = () => { form.querySelector("button").disabled = false; };
    xhr.send(file);
  });
})();
