// Bar charts with Chart.js (bundled; only the parts used are registered).
// Each chart is drawn beside a table of the same numbers: the table is what
// screen readers and the tests read, the canvas is labelled as an image.
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from 'chart.js'
import { h } from './dom'

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip)

export interface Series {
  label: string
  values: number[]
  color: string
}

export function barChart(id: string, label: string, labels: string[], series: Series[]): HTMLElement {
  const canvas = h('canvas', { id, role: 'img', 'aria-label': label })
  const box = h('div', { class: 'chart' }, canvas)
  // Drawn once the canvas is in the page (Chart.js measures its parent).
  requestAnimationFrame(() => {
    new Chart(canvas, {
      type: 'bar',
      data: { labels, datasets: series.map((s) => ({ label: s.label, data: s.values, backgroundColor: s.color })) },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: 'bottom' } },
      },
    })
  })
  return box
}
