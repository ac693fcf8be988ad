// A segment's entries and exits per day. The content security policy forbids inline scripts,
// so the page carries the figures in <script type="application/json" id="segment-history">
// and this file draws them with the vendored Chart.js.
(function () {
  "use strict";

  function draw() {
    const data = document.getElementById("segment-history");
    const canvas = document.getElementById("segment-chart");
    if (!data || !canvas || typeof window.Chart === "undefined") {
      return;
    }
    const days = JSON.parse(data.textContent);
    const previous = window.Chart.getChart(canvas);
    if (previous) {
      previous.destroy();
    }
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: days.map((d) => d.day),
        datasets: [
          { label: "Entered", data: days.map((d) => d.entered), backgroundColor: "#2f9e44" },
          { label: "Left", data: days.map((d) => -d.left), backgroundColor: "#e03131" },
        ],
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true } },
      },
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
