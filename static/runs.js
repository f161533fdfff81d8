// Runs pages: the list's run picker, the run page's live charts (uPlot), and the overlay chart.
//
// Run page: loads /api/runs/<id>/series once (downsampled curves, epoch boundaries, markers), then
// follows /api/runs/<id>/stream (server-sent events) until the run is finished: each message is what
// /series?after=<last seq> answers, the points changed since (from_step on; a resume removes what the
// crashed attempt logged past its step), and the page swaps its points from that step for them, so
// which event makes which point is decided only by the server (app/runs/curves.py). Where the stream
// is refused (too many open: 503) or EventSource is missing, the page polls /series?after= every
// second instead (#run gets data-live="stream" or "poll"). Every 5 s /api/runs/<id>/log gives the
// log tail. Channel loss: train solid, validation dashed in the same colour; keys 0/1/2 switch
// between overall, level-1 and level-2 channels; the legend toggles single channels. The smoothing
// slider draws the train losses' debiased EMA solid with the raw points faint behind.
// #chart-channels gets data-points="<points drawn>" once uPlot drew data (tests wait for it).
// window.sftlabRuns holds the EMA function and the uPlot instances by element id, for the browser tests.
(() => {
  "use strict";
  const COLORS = ["#2356c7", "#c0392b", "#1e7a3c", "#b35900", "#7a3fb8", "#0f7c8c", "#a61e6b", "#5b6b00",
    "#3f51b5", "#795548", "#e67e22", "#009688", "#8e44ad", "#2c3e50", "#d81b60", "#558b2f"];
  const REFETCH_AFTER = 6000; // points appended by polls before asking the server to downsample again
  const SMOOTHING_KEY = "sftlab.runs.smoothing";

  // TensorBoard's debiased exponential moving average: last = last*w + (1-w)*y, shown as
  // last / (1 - w^n) after n values, so the curve does not start near 0. A null (a step without this
  // channel) stays a gap and does not count: the next value continues the average.
  function ema(ys, w) {
    let last = 0; let n = 0;
    return ys.map((y) => {
      if (y == null || !Number.isFinite(y)) return null;
      last = last * w + (1 - w) * y; n++;
      return w > 0 ? last / (1 - Math.pow(w, n)) : y;
    });
  }
  window.sftlabRuns = { ema };

  // ---- runs list: pick runs for overlay / diff ----
  const pick = document.getElementById("pick");
  if (pick) {
    const overlayBtn = document.getElementById("overlay-btn");
    const diffBtn = document.getElementById("diff-btn");
    const picked = () => [...document.querySelectorAll(".pick-run:checked")].map((c) => c.value);
    const sync = () => {
      const ids = picked();
      overlayBtn.disabled = ids.length < 1;
      diffBtn.disabled = ids.length !== 2;
    };
    document.addEventListener("change", (ev) => { if (ev.target.classList.contains("pick-run")) sync(); });
    overlayBtn.addEventListener("click", () => { if (picked().length) location.href = "/runs/compare?ids=" + picked().join(","); });
    diffBtn.addEventListener("click", () => {
      const ids = picked();
      if (ids.length === 2) location.href = `/runs/diff?a=${ids[0]}&b=${ids[1]}`;
    });
    sync();
  }

  const width = (box) => Math.max(280, box.clientWidth || 600);
  // Small values (learning rates, MFU) need exponents, not "0".
  const fmt = (v) => (v == null ? "" : v !== 0 && Math.abs(v) < 0.01 ? v.toExponential(2) : Math.abs(v) >= 1e5 ? v.toExponential(2) : +v.toPrecision(4));
  const yAxis = { size: 64, values: (u, vals) => vals.map(fmt) };
  // Steps are whole numbers: never tick at 1.2.
  const xAxis = { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6] };

  // Vertical marker lines (epoch ends, checkpoints, warnings) drawn over the plot area.
  function markerPlugin(getMarks) {
    return { hooks: { draw: [(u) => {
      const ctx = u.ctx; const { left, top, width: w, height: h } = u.bbox;
      ctx.save();
      ctx.font = `${Math.round(10 * devicePixelRatio)}px sans-serif`;
      for (const m of getMarks()) {
        const x = Math.round(u.valToPos(m.step, "x", true));
        if (!(x >= left && x <= left + w)) continue;
        ctx.strokeStyle = m.color; ctx.fillStyle = m.color;
        ctx.setLineDash(m.dash || []);
        ctx.lineWidth = devicePixelRatio;
        ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
        if (m.label) ctx.fillText(m.label, x + 3 * devicePixelRatio, top + (m.row || 1) * 11 * devicePixelRatio);
      }
      ctx.restore();
    }], setCursor: [(u) => {
      // Tooltip: the markers within a few pixels of the cursor, as the plot's title.
      const cx = u.cursor.left;
      const near = cx == null || cx < 0 ? [] : getMarks().filter((m) => Math.abs(u.valToPos(m.step, "x") - cx) <= 4);
      u.over.title = near.map((m) => `${labels.step} ${m.step}: ${m.tip}`).join("\n");
    }] } };
  }

  // A raw series (drawn behind its smoothed twin, the next series) has no legend row of its own:
  // toggling the smoothed one in the legend shows or hides both.
  function rawPlugin() {
    return { hooks: {
      init: [(u) => {
        const rows = u.root.querySelectorAll(".u-legend .u-series");
        u.series.forEach((s, i) => { if (s.raw && rows[i]) rows[i].style.display = "none"; });
      }],
      setSeries: [(u, i, opts) => {
        if (i != null && i > 0 && u.series[i - 1].raw && opts.show != null) u.setSeries(i - 1, { show: opts.show });
      }],
    } };
  }

  function joinCurves(parts) {
    // parts: [{x, ys: [[...], ...]}] -> one aligned table (uPlot.join fills nulls where a part has no point)
    const tables = parts.filter((p) => p.x.length).map((p) => [p.x, ...p.ys]);
    if (!tables.length) return null;
    if (tables.length === 1) return tables[0];
    return uPlot.join(tables);
  }

  // ---- overlay page ----
  const overlayData = document.getElementById("overlay-data");
  if (overlayData && window.uPlot) {
    const d = JSON.parse(overlayData.textContent);
    const box = document.getElementById("chart-overlay");
    const runIds = [...new Set(d.series.map((s) => s.run_id))];
    if (d.x.length) {
      const series = [{ label: "step" }].concat(d.series.map((s) => ({
        label: `#${s.run_id} ${s.name} (${s.part})`, spanGaps: true,
        stroke: COLORS[runIds.indexOf(s.run_id) % COLORS.length], dash: s.part === "eval" ? [6, 4] : undefined,
        width: s.part === "eval" ? 2 : 1,
      })));
      new uPlot({ width: width(box), height: 380, series, scales: { x: { time: false } }, axes: [xAxis, yAxis] },
        [d.x, ...d.series.map((s) => s.y)], box);
      box.dataset.points = String(d.series.reduce((n, s) => n + s.y.filter((v) => v != null).length, 0));
    }
  }

  // ---- run page ----
  const root = document.getElementById("run");
  if (!root || !window.uPlot) return;
  const runId = root.dataset.runId;
  const labels = JSON.parse(document.getElementById("run-labels").textContent);
  const st = { level: 1, lastSeq: -1, finished: root.dataset.finished === "true", appended: 0,
    train: { x: [], series: {} }, scalars: { x: [], series: {} }, eval: { x: [], series: {} },
    epochs: [], checkpoints: [], warnings: [], plots: {}, status: "", ticks: 0, log: false, smoothing: 0.6 };
  window.sftlabRuns.plots = st.plots;

  // The server's answer to a poll: its points from `from` on replace this page's (see app.runs.series.series_since).
  function splice(curves, from, part) {
    let keep = curves.x.findIndex((s) => s >= from);
    if (keep < 0) keep = curves.x.length;
    curves.x.length = keep;
    for (const k in curves.series) curves.series[k].length = keep;
    curves.x = curves.x.concat(part.x);
    for (const [k, ys] of Object.entries(part.series)) {
      curves.series[k] = (curves.series[k] || new Array(keep).fill(null)).concat(ys);
    }
    for (const k in curves.series) {
      const ys = curves.series[k];
      while (ys.length < curves.x.length) ys.push(null);
    }
  }

  function marks() {
    return [
      ...st.epochs.map((e) => ({ step: e.step, color: "#6a737d", dash: [4, 3], label: `${labels.epoch} ${e.epoch}`, row: 1, tip: `${labels.epoch} ${e.epoch}` })),
      ...st.checkpoints.map((c) => ({ step: c.step, color: "#1e7a3c", label: "◆", row: 2, tip: `${labels.checkpoint} ${c.name}` })),
      ...st.warnings.map((w) => ({ step: w.step, color: "#b3261e", label: "⚠ " + w.kind, row: 3, tip: `${labels.warning} ${w.kind}: ${w.message}` })),
    ];
  }

  function channelNames() {
    const all = new Set([...Object.keys(st.train.series), ...Object.keys(st.eval.series)]);
    const prefix = st.level === 1 ? "l1/" : st.level === 2 ? "l2/" : null;
    const names = [...all].filter((n) => prefix && n.startsWith(prefix)).sort();
    return ["overall", ...names].filter((n) => all.has(n));
  }

  function shortName(n) {
    if (n.startsWith("l2/") && n.endsWith("/")) return n.slice(3) + "—"; // no level 2 under this level 1
    return n.replace(/^l[12]\//, "");
  }

  // A chart of train (solid) and eval (dashed) series for `names`; returns [opts series, data].
  // With smoothing, each train series is drawn twice: its raw points faint, then its EMA solid.
  function lossTable(names) {
    const series = [{ label: labels.step }]; const tCols = []; const eCols = [];
    const w = st.smoothing;
    names.forEach((n, i) => {
      const color = COLORS[i % COLORS.length];
      const ys = st.train.series[n];
      if (!ys) return;
      if (w > 0) {
        series.push({ label: `${shortName(n)} (${labels.raw})`, stroke: color + "40", width: 1, spanGaps: true, raw: true });
        tCols.push(ys);
        series.push({ label: shortName(n), stroke: color, spanGaps: true });
        tCols.push(ema(ys, w));
      } else { series.push({ label: shortName(n), stroke: color, spanGaps: true }); tCols.push(ys); }
    });
    names.forEach((n, i) => {
      const color = COLORS[i % COLORS.length];
      if (st.eval.series[n]) { series.push({ label: `${shortName(n)} (${labels.eval})`, stroke: color, dash: [6, 4], width: 2, spanGaps: true, points: { show: true, size: 5 } }); eCols.push(st.eval.series[n]); }
    });
    const parts = [];
    if (tCols.length) parts.push({ x: st.train.x, ys: tCols });
    if (eCols.length) parts.push({ x: st.eval.x, ys: eCols });
    if (tCols.length && eCols.length) {
      // join keeps column order: train columns, then eval columns
      const joined = uPlot.join([[st.train.x, ...tCols], [st.eval.x, ...eCols]]);
      return [series, joined];
    }
    return [series, joinCurves(parts)];
  }

  function scalarTable(keys) {
    const cols = keys.filter((k) => st.scalars.series[k]);
    return [cols, cols.length ? [st.scalars.x, ...cols.map((k) => st.scalars.series[k])] : null];
  }

  function draw(id, series, data, { height = 220, log = false } = {}) {
    const box = document.getElementById(id);
    if (!box) return;
    const old = st.plots[id];
    if (!data || !data[0].length) { if (old) { old.destroy(); delete st.plots[id]; } return; }
    const sameShape = old && old._log === log && old.series.length === series.length &&
      old.series.every((s, i) => i === 0 || s.label === series[i].label);
    if (sameShape) { old.setData(data); } else {
      if (old) old.destroy();
      box.innerHTML = "";
      st.plots[id] = new uPlot({
        width: width(box), height, series, plugins: [markerPlugin(marks), rawPlugin()],
        scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
        axes: [xAxis, yAxis], cursor: { drag: { x: true, y: false }, sync: { key: "run-" + runId } },
      }, data, box);
      st.plots[id]._log = log;
    }
    let n = 0; // points of the stored series: a smoothed twin adds none
    for (let i = 1; i < data.length; i++) if (!series[i - 1].raw) for (const v of data[i]) if (v != null) n++;
    box.dataset.points = String(n);
  }

  function drawAll() {
    const empty = !st.train.x.length && !st.eval.x.length;
    document.getElementById("charts-empty").hidden = !empty;
    const [cs, cd] = lossTable(channelNames());
    draw("chart-channels", cs, cd, { height: 320, log: st.log });
    const [ss, sd] = lossTable(["special"]);
    draw("chart-special", ss, sd, { log: st.log });
    for (const [id, keys] of [["chart-lr", ["lr"]], ["chart-grad_norm", ["grad_norm"]],
      ["chart-tokens", ["tokens_per_s", "supervised_tokens_per_s"]], ["chart-mfu", ["mfu"]]]) {
      const [cols, data] = scalarTable(keys);
      draw(id, [{ label: labels.step }, ...cols.map((k, i) => ({ label: k, stroke: COLORS[i], spanGaps: true }))], data);
    }
    drawMarkers();
  }

  function drawMarkers() {
    const body = document.querySelector("#markers tbody");
    const rows = [
      ...st.epochs.map((e) => [e.step, labels.epoch, String(e.epoch)]),
      ...st.checkpoints.map((c) => [c.step, labels.checkpoint, c.name + (c.resumed ? ` (${labels.resumed})` : "")]),
      ...st.warnings.map((w) => [w.step, `${labels.warning}: ${w.kind}`, w.message]),
    ].sort((a, b) => a[0] - b[0]);
    body.replaceChildren(...rows.map((r) => {
      const tr = document.createElement("tr");
      for (const v of r) { const td = document.createElement("td"); td.textContent = v; tr.append(td); }
      return tr;
    }));
    document.getElementById("markers-count").textContent = rows.length;
    if (st.warnings.length) document.getElementById("markers-box").open = true;
  }

  function fmtTime(s) {
    s = Math.max(0, Math.round(s));
    return `${Math.floor(s / 3600)}:${String(Math.floor(s % 3600 / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  }

  function progress(r) {
    const bar = document.getElementById("run-bar");
    const frac = r.total_steps ? Math.min(1, r.step / r.total_steps) : 0;
    bar.style.width = (frac * 100).toFixed(2) + "%";
    document.getElementById("run-step").textContent =
      `${labels.step} ${r.step}` + (r.total_steps ? ` / ${r.total_steps} (${Math.round(frac * 100)}%)` : "");
    document.getElementById("run-eta").textContent = r.eta_s != null && !r.finished ? `${labels.eta} ${fmtTime(r.eta_s)}` : "";
    const badge = document.getElementById("run-status");
    badge.textContent = labels.statuses[r.status] || r.status;
    badge.className = "run-status st-" + r.status;
    if (r.status !== "queued") {  // the queue's line says nothing once the run has left the queue
      for (const id of ["run-ahead", "run-unserved"]) document.getElementById(id)?.remove();
    }
  }

  async function loadSeries() {
    const res = await fetch(`/api/runs/${runId}/series`, { headers: { accept: "application/json" } });
    if (!res.ok) return false;
    const d = await res.json();
    st.train = { x: d.train.x, series: d.train.series };
    st.scalars = { x: d.scalars.x, series: d.scalars.series };
    st.eval = { x: d.eval.x, series: d.eval.series };
    st.epochs = d.epochs; st.checkpoints = d.checkpoints; st.warnings = d.warnings;
    st.lastSeq = d.last_seq; st.appended = 0; st.finished = d.finished; st.status = d.status;
    drawAll();
    return true;
  }

  // The log tail follows the run every few seconds (its own endpoint: the run JSON costs far more).
  async function refreshLog() {
    const res = await fetch(`/api/runs/${runId}/log`, { headers: { accept: "application/json" } });
    if (!res.ok) return;
    const d = await res.json();
    const pre = document.getElementById("run-log");
    if (!d.log || pre.textContent === d.log) return;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = d.log;
    pre.hidden = false;
    const none = document.getElementById("run-log-none");
    if (none) none.remove();
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  // Applies one answer of /series?after= (polled or streamed); true when the page is reloading.
  async function apply(d) {
    // The start event carries the data counts the page was rendered without: render it again.
    if (d.started && document.getElementById("counts-none")) { location.reload(); return true; }
    const changed = d.last_seq !== st.lastSeq;
    if (d.from_step != null) {
      splice(st.train, d.from_step, d.train);
      splice(st.scalars, d.from_step, d.scalars);
      splice(st.eval, d.from_step, d.eval);
      st.appended += d.train.x.length;
    }
    st.epochs = d.epochs; st.checkpoints = d.checkpoints; st.warnings = d.warnings;
    st.lastSeq = d.last_seq;
    const wasFinished = st.finished;
    st.finished = d.finished;
    if (st.appended > REFETCH_AFTER) await loadSeries(); else if (changed) drawAll();
    progress(d);
    return st.finished && !wasFinished && finish();
  }

  // Finished: reload once for the final checkpoints, log and buttons.
  function finish() {
    st.finished = true;
    setTimeout(() => location.reload(), 500);
    return true;
  }

  async function poll() {
    if (st.finished) return;
    root.dataset.live = "poll";
    try {
      const res = await fetch(`/api/runs/${runId}/series?after=${st.lastSeq}`, { headers: { accept: "application/json" } });
      if (res.ok) {
        if (++st.ticks % 5 === 0) refreshLog();
        if (await apply(await res.json())) return;
      }
    } catch (e) { /* network hiccup: try again on the next tick */ }
    setTimeout(poll, 1000);
  }

  // Pushed updates; EventSource reconnects by itself (sending the last id as Last-Event-ID) after a
  // network drop or the server's lifetime limit. A refused stream (503) closes it: poll instead.
  function follow() {
    if (st.finished) return;
    if (!window.EventSource) { setTimeout(poll, 1000); return; }
    const es = new EventSource(`/api/runs/${runId}/stream?after=${st.lastSeq}`);
    let queue = Promise.resolve(); // messages applied in order, even when a refetch awaits
    const logTimer = setInterval(refreshLog, 5000);
    const stop = () => { es.close(); clearInterval(logTimer); };
    es.onopen = () => { root.dataset.live = "stream"; };
    es.onmessage = (ev) => {
      queue = queue.then(() => apply(JSON.parse(ev.data))).then((done) => { if (done) stop(); }, () => {});
    };
    es.addEventListener("finished", () => { queue = queue.then(() => { stop(); if (!st.finished) finish(); }); });
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) { stop(); setTimeout(poll, 1000); }
    };
  }

  for (const btn of document.querySelectorAll("[data-level]")) {
    btn.addEventListener("click", () => {
      st.level = Number(btn.dataset.level);
      for (const b of document.querySelectorAll("[data-level]")) b.classList.toggle("on", b === btn);
      const [cs, cd] = lossTable(channelNames());
      draw("chart-channels", cs, cd, { height: 320, log: st.log });
    });
  }
  const slider = document.getElementById("smoothing");
  const sliderValue = document.getElementById("smoothing-value");
  const saved = Number(localStorage.getItem(SMOOTHING_KEY));
  if (localStorage.getItem(SMOOTHING_KEY) !== null && saved >= 0 && saved <= 0.99) slider.value = String(saved);
  const smooth = () => {
    st.smoothing = Number(slider.value);
    sliderValue.textContent = st.smoothing.toFixed(2);
    localStorage.setItem(SMOOTHING_KEY, slider.value);
  };
  smooth();
  slider.addEventListener("input", () => {
    smooth();
    const [cs, cd] = lossTable(channelNames());
    draw("chart-channels", cs, cd, { height: 320, log: st.log });
    const [ss, sd] = lossTable(["special"]);
    draw("chart-special", ss, sd, { log: st.log });
  });
  const logBtn = document.getElementById("log-scale");
  logBtn.addEventListener("click", () => {
    st.log = !st.log;
    logBtn.classList.toggle("on", st.log);
    drawAll();
  });
  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(() => { for (const [id, p] of Object.entries(st.plots)) p.setSize({ width: width(document.getElementById(id)), height: p.height }); }, 150);
  });

  const log = document.getElementById("run-log");
  if (log) log.scrollTop = log.scrollHeight;
  loadSeries().then(() => follow());
})();
