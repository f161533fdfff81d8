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
    const width = Math.max(300, box.clientWidth || 420);
    const opts = {
      width, height: 170, legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false } },
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
  if (sel) sel.addEventListener("change", () => metrics.forEach((m) => draw(m, sel.value)));
})();
