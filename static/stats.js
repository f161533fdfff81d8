// Histograms of the statistics page, drawn with uPlot from the JSON the server embedded
// (#charts-data: {histograms: {metric: {edges, all, by_task: {l1: counts}, open_end}}, tasks}).
// The task selector redraws every chart for that task_type with the same bin edges.
(() => {
  const el = document.getElementById("charts-data");
  if (!el || !window.uPlot) return;
  const data = JSON.parse(el.textContent);
  const plots = {};
  const bars = uPlot.paths.bars({ size: [0.9, 100], align: 1 });

  function series(metric, task) {
    const h = data.histograms[metric];
    const counts = task ? (h.by_task[task] || h.edges.map(() => 0)) : h.all;
    return [h.edges.slice(), counts.slice()];
  }

  function draw(metric, task) {
    const box = document.getElementById("plot-" + metric);
    if (!box) return;
    const h = data.histograms[metric];
    // The figure's inner width: the canvas must never widen its grid cell.
    const width = Math.max(260, box.clientWidth || 420);
    const opts = {
      width, height: 170, legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      // Bars start at their bin edge (align 1): the x range runs from the first edge to one bin past the
      // last, which also keeps a single-bin histogram (every sample has 1 turn) visible.
      scales: { x: { time: false, range: () => {
        const step = h.edges.length > 1 ? h.edges[1] - h.edges[0] : 1;
        return [h.edges[0], h.edges[h.edges.length - 1] + step];
      } } },
      axes: [
        { values: (u, vals) => vals.map((v) => (v >= h.edges[h.edges.length - 1] && h.open_end ? v + "+" : v)) },
        { size: 50 },
      ],
      series: [{}, { label: "samples", fill: "rgba(35,86,199,0.35)", stroke: "#2356c7", paths: bars, points: { show: false } }],
      hooks: { setCursor: [(u) => {
        const i = u.cursor.idx; const tip = box.parentElement.querySelector(".summary");
        if (i == null || !tip) return;
        const lo = h.edges[i], hi = i + 1 < h.edges.length ? h.edges[i + 1] - 1 : null;
        tip.dataset.hover = `${lo}${hi === null ? "+" : (hi > lo ? "–" + hi : "")}: ${u.data[1][i]}`;
        tip.title = tip.dataset.hover;
      }] },
    };
    if (plots[metric]) plots[metric].destroy();
    box.innerHTML = "";
    plots[metric] = new uPlot(opts, series(metric, task), box);
  }

  const metrics = Object.keys(data.histograms);
  metrics.forEach((m) => draw(m, ""));
  const sel = document.getElementById("hist-task");
  const redraw = () => metrics.forEach((m) => draw(m, sel ? sel.value : ""));
  if (sel) sel.addEventListener("change", redraw);
  let pending = null;
  window.addEventListener("resize", () => { clearTimeout(pending); pending = setTimeout(redraw, 150); });
})();
