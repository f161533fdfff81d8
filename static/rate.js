// The rater page (/rate/{task_key}): one case at a time, keyboard first.
//
// The server renders the shell (templates/pages/rate.html) and each case's HTML
// (app/rendering/markdown.py: inert by construction); this script inserts only those *_html fields as
// HTML and sets every other string with textContent.
//
// Keys: digits score the highlighted dimension (0 is 10 on 1-10), Tab / Shift+Tab move, scoring moves on;
// pairwise a / l / = (or arrows) pick left / right / tie; Enter submits and shows the prefetched case;
// s skips; f flags with a comment; u or Ctrl+Z undoes the last submission; d word diff; r reference; ? help.
//
// One case is kept in hand: after each case is shown, `next` is called with the shown token excluded, so
// Enter never waits for the network. Every API call goes through one queue, so a prefetch always runs
// after the submission before it (the server allows two active assignments per rater and task).
(() => {
  "use strict";
  const root = document.getElementById("rate");
  if (!root) return;
  const T = JSON.parse(document.getElementById("rate-i18n").textContent);
  const fmt = (key, vars) =>
    (T[key] || key).replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m));
  const taskKey = root.dataset.task;
  const nextUrl = `/api/rate/${encodeURIComponent(taskKey)}/next`;
  const byId = (id) => document.getElementById(id);
  const live = byId("rate-live");

  let current = null; // the CaseView on screen
  let prefetched = null; // the one in hand
  let progress = null;
  let state = null; // what the rater has typed for `current`
  const typed = new Map(); // token -> state: a case shown again (undo, failed save) keeps its scores
  let lastSent = null; // {token, state} of the last submission
  let chain = Promise.resolve();
  let diffOn = false;
  let timer = null;

  // ---- the API, one call at a time --------------------------------------------------------------
  function api(method, url, body) {
    return fetch(url, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": window.sftlab.csrf() },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(async (r) => {
      const data = await r.json().catch(() => ({}));
      if (!r.ok) {
        const d = data.detail;
        throw new Error(typeof d === "string" ? d : Array.isArray(d) ? d.map((e) => e.msg).join("; ") : `HTTP ${r.status}`);
      }
      return data;
    });
  }
  function queued(fn) {
    const p = chain.then(fn);
    chain = p.catch(() => {});
    return p;
  }
  function say(key, vars) {
    live.classList.remove("bad");
    live.textContent = fmt(key, vars);
  }
  function sayBad(key, vars) {
    say(key, vars);
    live.classList.add("bad");
  }

  // ---- what is scored -----------------------------------------------------------------------------
  const pairwise = () => current && current.mode === "pairwise";
  function targets() {
    if (!current) return [];
    const dims = current.dimensions || [];
    if (!pairwise()) return dims.map((dim) => ({ side: null, dim }));
    return ["left", "right"].flatMap((side) => dims.map((dim) => ({ side, dim })));
  }
  const scoresOf = (t) => (t.side ? state.scores[t.side] : state.scores);
  const getScore = (t) => scoresOf(t)[t.dim.key];
  const dimLabel = (t) => (t.side ? `${fmt("rate.pref." + t.side)} · ${t.dim.name}` : t.dim.name);

  function freshState(cv) {
    const sub = cv.submitted;
    const scores = cv.mode === "pairwise" ? { left: {}, right: {} } : {};
    if (sub && sub.scores) {
      if (cv.mode === "pairwise") {
        Object.assign(scores.left, sub.scores.left || {});
        Object.assign(scores.right, sub.scores.right || {});
      } else Object.assign(scores, sub.scores);
    }
    return {
      scores,
      preference: (sub && sub.preference) || null,
      flag: Boolean(sub && sub.flag),
      comment: (sub && sub.comment) || "",
      focus: 0,
      missing: -1,
      started: Date.now(),
    };
  }

  // ---- drawing --------------------------------------------------------------------------------------
  function fill(el, html, raw) {
    // *_html comes from the server's safe renderer; raw text (an older server) is shown as text.
    if (html !== undefined && html !== null) el.innerHTML = html;
    else {
      el.textContent = raw || "";
      el.classList.add("plain");
    }
  }

  function drawCase() {
    const cv = current;
    byId("rate-loading").hidden = true;
    byId("rate-done").hidden = Boolean(cv);
    byId("rate-panel").hidden = !cv;
    for (const id of ["rate-system", "rate-earlier", "rate-prompt", "rate-reference", "rate-answers"]) byId(id).hidden = true;
    byId("rate-editing").hidden = !(cv && cv.submitted);
    const tt = byId("rate-tt");
    tt.hidden = !(cv && cv.task_type);
    tt.textContent = (cv && cv.task_type) || "";
    if (!cv) return;
    if (cv.system) {
      byId("rate-system").hidden = false;
      fill(byId("rate-system").querySelector(".md"), cv.system_html, cv.system);
    }
    const turns = byId("rate-earlier").querySelector(".turns");
    turns.replaceChildren();
    for (const turn of cv.history || []) {
      const div = document.createElement("div");
      div.className = `turn role-${turn.role === "assistant" ? "assistant" : "user"}`;
      const who = document.createElement("small");
      who.className = "muted";
      who.textContent = fmt(turn.role === "assistant" ? "rate.role.assistant" : "rate.role.user");
      const body = document.createElement("div");
      body.className = "md";
      fill(body, turn.html, turn.content);
      div.append(who, body);
      turns.append(div);
    }
    byId("rate-earlier").hidden = !(cv.history || []).length;
    byId("rate-prompt").hidden = false;
    fill(byId("rate-prompt").querySelector(".md"), cv.prompt_html, cv.prompt);
    const ref = byId("rate-reference");
    ref.open = false;
    if (cv.reference) {
      ref.hidden = false;
      fill(ref.querySelector(".md"), cv.reference_html, cv.reference);
    }
    byId("rate-answers").hidden = false;
    drawAnswers();
    byId("rate-pref").hidden = !pairwise();
    byId("rate-scores-head").hidden = !targets().length;
    drawPanel();
  }

  function drawAnswers() {
    const cv = current;
    const two = (cv.answers || []).length === 2;
    byId("rate-diff-row").hidden = !two;
    byId("rate-diff").checked = diffOn && two;
    const grid = byId("rate-answers").querySelector(".rate-answer-grid");
    grid.classList.toggle("two", two);
    grid.replaceChildren();
    for (const a of cv.answers || []) {
      const box = document.createElement("section");
      box.className = `rate-answer side-${a.side}`;
      const h = document.createElement("h3");
      h.textContent = fmt(two ? `rate.${a.side}` : "rate.answer");
      const body = document.createElement("div");
      if (two && diffOn && cv.diff_html) {
        body.className = "diff";
        body.innerHTML = cv.diff_html[a.side];
      } else {
        body.className = "md";
        fill(body, a.html, a.text);
      }
      box.append(h, body);
      grid.append(box);
    }
    drawPreference();
  }

  function drawPreference() {
    for (const b of root.querySelectorAll("[data-pref]")) {
      const on = state && state.preference === b.dataset.pref;
      b.classList.toggle("on", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    }
    for (const box of root.querySelectorAll(".rate-answer")) {
      const side = box.classList.contains("side-left") ? "left" : "right";
      box.classList.toggle("preferred", Boolean(state && (state.preference === side || state.preference === "tie")));
    }
  }

  function drawPanel() {
    const list = byId("rate-dims");
    list.replaceChildren();
    let group = null;
    targets().forEach((t, i) => {
      if (t.side && (!group || group.dataset.side !== t.side)) {
        group = document.createElement("div");
        group.className = "rate-side";
        group.dataset.side = t.side;
        const h = document.createElement("h4");
        h.textContent = fmt(`rate.${t.side}`);
        group.append(h);
        list.append(group);
      }
      const row = document.createElement("div");
      row.className = "rate-dim";
      row.dataset.idx = String(i);
      if (i === state.focus) {
        row.classList.add("focus");
        row.setAttribute("aria-current", "true");
      }
      if (i === state.missing) row.classList.add("missing");
      const name = document.createElement("div");
      name.className = "rate-dim-name";
      name.textContent = t.dim.name;
      const guide = document.createElement("div");
      guide.className = "rate-dim-guide";
      guide.textContent = t.dim.guidance || "";
      const scale = document.createElement("div");
      scale.className = "rate-scale";
      for (let v = t.dim.min; v <= t.dim.max; v++) {
        const b = document.createElement("button");
        b.type = "button";
        b.tabIndex = -1;
        b.textContent = String(v);
        b.dataset.idx = String(i);
        b.dataset.value = String(v);
        if (getScore(t) === v) b.classList.add("on");
        scale.append(b);
      }
      row.append(name, scale, guide);
      (group || list).append(row);
    });
    const flagged = byId("rate-flagged");
    flagged.hidden = !state.flag;
    flagged.querySelector("span").textContent = state.comment;
    drawPreference();
    const focused = list.querySelector(".rate-dim.focus");
    if (focused) focused.scrollIntoView({ block: "nearest" });
  }

  function drawProgress() {
    byId("rate-progress").textContent = progress ? `${progress.done} / ${progress.total}` : "– / –";
  }

  function tick() {
    const el = byId("rate-time");
    if (!state || !current) return;
    const s = Math.floor((Date.now() - state.started) / 1000);
    el.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function show(cv) {
    if (current && state && (!cv || cv.token !== current.token)) typed.set(current.token, state);
    current = cv || null;
    state = null;
    if (cv) {
      state = typed.get(cv.token) || freshState(cv);
      typed.delete(cv.token);
      state.started = Date.now();
      state.missing = -1;
      state.focus = 0; // a case shown again starts from its first dimension, like a new one
    }
    closeFlag();
    drawCase();
    tick();
    if (!timer) timer = setInterval(tick, 1000);
    window.scrollTo(0, 0);
  }

  function showLoading() {
    if (current && state) typed.set(current.token, state);
    current = null;
    state = null;
    byId("rate-loading").hidden = false;
    byId("rate-panel").hidden = true;
    byId("rate-answers").hidden = true;
  }

  // ---- moving through the queue -------------------------------------------------------------------
  function takeNext() {
    if (prefetched) {
      const cv = prefetched;
      prefetched = null;
      return Promise.resolve(cv);
    }
    return api("POST", nextUrl, { exclude: current ? [current.token] : [] }).then((r) => {
      progress = r.progress;
      drawProgress();
      return r.case;
    });
  }

  function prefetch() {
    queued(() => {
      if (prefetched || !current) return null;
      return api("POST", nextUrl, { exclude: [current.token] }).then((r) => {
        progress = r.progress;
        drawProgress();
        if (r.case && current && r.case.token !== current.token) prefetched = r.case;
      });
    });
  }

  // Callers queue their own POST first: the refill must see the submission or skip before it.
  function advance() {
    if (prefetched) {
      const cv = prefetched;
      prefetched = null;
      show(cv);
      prefetch();
      return;
    }
    showLoading();
    queued(takeNext).then(
      (cv) => {
        show(cv);
        if (cv) prefetch();
      },
      (e) => sayBad("rate.live.failed", { message: e.message }),
    );
  }

  function start() {
    const token = root.dataset.token;
    const first = token
      ? queued(() => api("GET", `/api/rate/a/${encodeURIComponent(token)}`))
      : queued(() => api("POST", nextUrl, { exclude: [] }).then((r) => {
          progress = r.progress;
          drawProgress();
          return r.case;
        }));
    first.then(
      (cv) => {
        show(cv);
        prefetch();
      },
      (e) => {
        byId("rate-loading").hidden = true;
        sayBad("rate.live.failed", { message: e.message });
      },
    );
  }

  // ---- actions ---------------------------------------------------------------------------------------
  function setFocus(i) {
    const n = targets().length;
    if (!n) return;
    state.focus = (i + n) % n;
    drawPanel();
    say("rate.live.focus", { dim: dimLabel(targets()[state.focus]) });
  }

  function score(i, value) {
    const t = targets()[i];
    if (!t) return;
    if (!(value >= t.dim.min && value <= t.dim.max)) {
      const allowed = t.dim.max === 10 && t.dim.min === 1 ? "1–9, 0 = 10" : `${t.dim.min}–${t.dim.max}`;
      sayBad("rate.live.bad_key", { dim: dimLabel(t), allowed });
      return;
    }
    scoresOf(t)[t.dim.key] = value;
    if (state.missing === i) state.missing = -1;
    if (i === state.focus && i < targets().length - 1) state.focus = i + 1;
    drawPanel();
    say("rate.live.scored", { dim: dimLabel(t), value });
  }

  function scoreKey(key) {
    const t = targets()[state.focus];
    if (!t) return;
    const value = key === "0" && t.dim.max === 10 ? 10 : Number(key);
    score(state.focus, value);
  }

  function prefer(side) {
    if (!pairwise()) return;
    state.preference = side;
    drawPreference();
    say("rate.live.pref", { side: fmt(`rate.pref.${side}`) });
  }

  function body() {
    return {
      scores: state.scores,
      preference: pairwise() ? state.preference : null,
      flag: state.flag,
      comment: state.comment,
      duration_ms: Math.max(0, Date.now() - state.started),
    };
  }

  function submit() {
    if (!current) return;
    if (pairwise() && !state.preference) {
      sayBad("rate.live.missing_pref");
      byId("rate-pref").classList.add("missing");
      return;
    }
    byId("rate-pref").classList.remove("missing");
    const miss = targets().findIndex((t) => getScore(t) === undefined);
    if (miss >= 0) {
      state.missing = miss;
      state.focus = miss;
      drawPanel();
      sayBad("rate.live.missing", { dim: dimLabel(targets()[miss]) });
      return;
    }
    const sent = current;
    const sentState = state;
    const payload = body();
    queued(() => api("POST", `/api/rate/a/${encodeURIComponent(sent.token)}`, payload)).then(
      (r) => {
        progress = r.progress;
        drawProgress();
      },
      (e) => {
        // Not saved: the case comes back with what was typed, and the one shown goes back in hand.
        if (current && current.token !== sent.token) prefetched = current;
        typed.set(sent.token, sentState);
        show(sent);
        sayBad("rate.live.error", { message: e.message });
      },
    );
    lastSent = { token: sent.token, state: sentState }; // undo reopens it with what was typed
    current = null;
    state = null;
    advance();
    say("rate.live.submitted");
  }

  function skip() {
    if (!current) return;
    const token = current.token;
    current = null; // not kept: a skipped case is not offered again
    state = null;
    queued(() => api("POST", `/api/rate/a/${encodeURIComponent(token)}/skip`, {})).catch((e) =>
      sayBad("rate.live.error", { message: e.message }),
    );
    advance();
    say("rate.live.skipped");
  }

  function undo() {
    queued(() => api("POST", `/api/rate/${encodeURIComponent(taskKey)}/undo`, {})).then(
      (r) => {
        if (!r.case) {
          say("rate.live.nothing_to_undo");
          return;
        }
        if (current && current.token !== r.case.token) {
          typed.set(current.token, state);
          prefetched = current;
        }
        if (lastSent && lastSent.token === r.case.token) typed.set(r.case.token, lastSent.state);
        lastSent = null;
        show(r.case);
        if (progress && progress.done > 0) progress.done -= 1;
        drawProgress();
        drawPanel();
        say("rate.live.undone");
      },
      (e) => sayBad("rate.live.failed", { message: e.message }),
    );
  }

  function openFlag() {
    if (!current) return;
    const box = byId("rate-flag-box");
    const input = byId("rate-flag-input");
    box.hidden = false;
    input.value = state.comment;
    input.focus();
  }
  function closeFlag() {
    byId("rate-flag-box").hidden = true;
    const input = byId("rate-flag-input");
    if (document.activeElement === input) input.blur();
  }
  function saveFlag() {
    const text = byId("rate-flag-input").value.trim();
    state.comment = text;
    state.flag = text.length > 0;
    closeFlag();
    drawPanel();
    say(state.flag ? "rate.live.flagged" : "rate.live.unflagged");
  }

  function toggleDiff() {
    if (!current || (current.answers || []).length !== 2) return;
    diffOn = !diffOn;
    drawAnswers();
    say(diffOn ? "rate.live.diff_on" : "rate.live.diff_off");
  }

  function toggleKeys() {
    const d = byId("rate-keys");
    if (d.open) d.close();
    else d.showModal();
  }

  // ---- keys (capture phase on window: before app.js's page-wide shortcuts) ---------------------------
  const PREF_KEYS = { a: "left", ArrowLeft: "left", l: "right", ArrowRight: "right", "=": "tie", ArrowDown: "tie" };

  function onKey(ev) {
    const target = ev.target;
    const stop = () => {
      ev.preventDefault();
      ev.stopImmediatePropagation();
    };
    if (target && target.id === "rate-flag-input") {
      if (ev.key === "Enter") {
        stop();
        saveFlag();
      } else if (ev.key === "Escape") {
        stop();
        closeFlag();
      }
      return;
    }
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT")) return;
    const dialog = byId("rate-keys");
    if (dialog.open) {
      if (ev.key === "?") {
        stop();
        dialog.close();
      }
      return;
    }
    if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && ev.key.toLowerCase() === "z") {
      stop();
      undo();
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const k = ev.key;
    if (k === "?") return stop(), toggleKeys();
    if (k === "u") return stop(), undo();
    if (!current || !state) return;
    if (/^[0-9]$/.test(k)) return stop(), scoreKey(k);
    if (k === "Tab") return stop(), setFocus(state.focus + (ev.shiftKey ? -1 : 1));
    if (k === "Enter") return stop(), submit();
    if (k === "s") return stop(), skip();
    if (k === "f") return stop(), openFlag();
    if (k === "d") return stop(), toggleDiff();
    if (k === "r" && current.reference) {
      stop();
      byId("rate-reference").open = !byId("rate-reference").open;
      return;
    }
    if (pairwise() && k in PREF_KEYS) return stop(), prefer(PREF_KEYS[k]);
  }
  window.addEventListener("keydown", onKey, true);

  root.addEventListener("click", (ev) => {
    const scoreBtn = ev.target.closest(".rate-scale button");
    if (scoreBtn && state) {
      state.focus = Number(scoreBtn.dataset.idx);
      score(state.focus, Number(scoreBtn.dataset.value));
      return;
    }
    const row = ev.target.closest(".rate-dim");
    if (row && state) return setFocus(Number(row.dataset.idx));
    const pref = ev.target.closest("[data-pref]");
    if (pref && state) return prefer(pref.dataset.pref);
    if (ev.target.id === "rate-diff") return toggleDiff();
    const act = ev.target.closest("[data-act]");
    if (!act) return;
    act.blur();
    ({ submit, skip, flag: openFlag, undo, keys: toggleKeys })[act.dataset.act]();
  });

  start();
})();
