// The dashboard's revenue chart. The content security policy forbids inline scripts, so the
// page carries its figures in <script type="application/json" id="revenue-data"> and this
// file draws them with the vendored Chart.js, again after "Refresh now" swaps the section.
(function () {
  "use strict";

  function draw() {
    const data = document.getElementById("revenue-data");
    const canvas = document.getElementById("revenue-chart");
    if (!data || !canvas || typeof window.Chart === "undefined") {
      return;
    }
    const months = JSON.parse(data.textContent);
    const previous = window.Chart.getChart(canvas);
    if (previous) {
      previous.destroy();
    }
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: months.map((m) => m.month),
        datasets: [
          {
            label: "Revenue",
            data: months.map((m) => m.revenue_minor / 100),
            backgroundColor: "#3056d3",
          },
        ],
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              afterLabel: (item) => months[item.dataIndex].orders + " orders",
            },
          },
        },
        scales: { y: { beginAtZero: true } },
      },
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
  document.addEventListener("htmx:afterSettle", draw);
})();
