// Charts of the Analytics pages. The content security policy forbids inline scripts, so each
// page carries a Chart.js configuration in <script type="application/json" id="…"> and names
// it on its canvas (data-chart="…"); this file draws every such canvas with the vendored
// Chart.js.
(function () {
  "use strict";

  function draw() {
    if (typeof window.Chart === "undefined") {
      return;
    }
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      const source = document.getElementById(canvas.dataset.chart);
      if (!source) {
        return;
      }
      const config = JSON.parse(source.textContent);
      config.options = Object.assign(
        { animation: false, responsive: true, maintainAspectRatio: false },
        config.options || {}
      );
      config.data.datasets.forEach(function (set) {
        if (!set.backgroundColor) {
          set.backgroundColor = "#3056d3";
        }
      });
      const previous = window.Chart.getChart(canvas);
      if (previous) {
        previous.destroy();
      }
      new window.Chart(canvas, config);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
  document.addEventListener("htmx:afterSettle", draw);
})();
