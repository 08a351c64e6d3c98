// The console page: polls /api/console and draws it. Plain script, no framework; every value from
// the server is written with textContent (never as HTML). Charts: uPlot, served by this console.
"use strict"

const $ = (id) => document.getElementById(id)

const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value
    else if (key === "dataset") Object.assign(node.dataset, value)
    // Styles through the CSSOM: the page's Content-Security-Policy allows no inline style attributes.
    else if (key === "style") Object.assign(node.style, value)
    else node.setAttribute(key, value)
  }
  for (const child of children) node.append(child ?? "")
  return node
}

// --- formatting --------------------------------------------------------------------------------

const number = (n, digits = 0) => (n === null || n === undefined ? "–" : n.toLocaleString("en-GB", { maximumFractionDigits: digits }))
const bytes = (n) => {
  if (n === null || n === undefined) return "–"
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let value = Math.abs(n)
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${n < 0 ? "-" : ""}${unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`
}
const secondsAgo = (iso) => (iso ? Math.max(0, (Date.now() - Date.parse(iso)) / 1000) : null)
const ago = (iso) => {
  const s = secondsAgo(iso)
  return s === null ? "–" : s < 120 ? `${s.toFixed(1)} s ago` : s < 7200 ? `${(s / 60).toFixed(1)} min ago` : `${(s / 3600).toFixed(1)} h ago`
}
const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString("en-GB") : "–")
/** A key's folder and the end of its name (the full key is in the row's tooltip). */
const shortKey = (key) => {
  const slash = key.lastIndexOf("/")
  const name = key.slice(slash + 1)
  return `${key.slice(0, slash + 1)}${name.length > 28 ? `…${name.slice(-28)}` : name}`
}
const shortSequence = (seq) => (seq ? `…${seq.slice(-12)}` : "–")

// --- the pipeline diagram ----------------------------------------------------------------------

/** Grid cells: the main line source → reader → stream → consumer → warehouse, the lake under the stream. */
const LAYOUT = { source: [1, 1], reader: [3, 1], stream: [5, 1], consumer: [7, 1], warehouse: [9, 1], lake: [5, 3] }

const drawPipeline = (stages) => {
  const box = $("pipeline")
  box.replaceChildren()
  if (stages.length === 0) return box.append(el("p", { class: "muted" }, "no status reading yet"))
  for (const column of [2, 4, 6, 8]) box.append(el("div", { class: "arrow", style: { gridColumn: String(column), gridRow: "1" } }, "→"))
  box.append(el("div", { class: "arrow", style: { gridColumn: "5", gridRow: "2" } }, "↓"))
  for (const stage of stages) {
    const [column, row] = LAYOUT[stage.id]
    box.append(
      el(
        "div",
        { class: "stage", style: { gridColumn: String(column), gridRow: String(row) }, dataset: { stage: stage.id, state: stage.state } },
        el("span", { class: "state" }, stage.state),
        el("div", { class: "name" }, stage.label),
        el("div", { class: "detail" }, stage.detail)
      )
    )
  }
}

// --- charts ------------------------------------------------------------------------------------

const COLOURS = ["#1c7ed6", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0ca678", "#d6336c", "#495057"]

const CHARTS = [
  { id: "latency", unit: "ms", series: [["latencyP50Ms", "p50"], ["latencyP99Ms", "p99"]] },
  { id: "events", unit: "/s", series: [["publishedPerSecond", "published"], ["appliedPerSecond", "applied"]] },
  { id: "wal", unit: "bytes", series: [["publishedWalBytesPerSecond", "durable on the stream"], ["appliedWalBytesPerSecond", "consistent in the warehouse"]] },
  { id: "lag-seconds", unit: "s", series: [["readerLagSeconds", "reader"], ["consumerLagSeconds", "warehouse"], ["lakeLagSeconds", "lake"]] },
  { id: "lag-bytes", unit: "bytes", series: [["readerLagBytes", "reader"], ["consumerLagBytes", "warehouse"], ["lakeLagBytes", "lake"]] }
]

/** uPlot instances by chart id, and the shard ids the shard chart was made for (exposed for tests). */
const charts = {}
let shardIds = ""

/** Axis labels stay short: three significant digits. */
const compact = (n) => (n === 0 ? "0" : Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1).replace(/\.0$/, "") : n.toFixed(2).replace(/\.?0+$/, ""))
const axisBytes = (n) => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let unit = 0
  while (Math.abs(n) >= 1024 && unit < units.length - 1) {
    n /= 1024
    unit++
  }
  return `${compact(n)} ${units[unit]}`
}
const axisValues = (unit) => (_plot, ticks) => ticks.map((v) => (unit === "bytes" ? axisBytes(v) : compact(v)))
/** Byte axes step in powers of two (1, 2, 4 … 512 B, KiB, MiB, GiB). */
const BYTE_STEPS = [0, 1, 2, 3, 4].flatMap((power) => [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].map((m) => m * 1024 ** power))
const axisTimes = (_plot, ticks) => ticks.map((t) => new Date(t * 1000).toLocaleTimeString("en-GB"))
const latest = (column) => {
  for (let i = column.length - 1; i >= 0; i--) if (column[i] !== null && column[i] !== undefined) return column[i]
  return null
}
const shardLabel = (id) => `shard ${Number(id.split("-").pop())}`

const makeChart = (id, unit, series, data) => {
  const figure = $(`chart-${id}`)
  figure.querySelector(".uplot")?.remove()
  charts[id]?.destroy()
  const width = Math.max(240, figure.clientWidth - 14)
  charts[id] = new window.uPlot(
    {
      width,
      height: 170,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(1, max ?? 1) * 1.1] } },
      // The legend names the series; the newest values are in the caption (a legend shows values only under the cursor).
      legend: { live: false },
      axes: [{ stroke: "#6c757d", space: 80, values: axisTimes }, { stroke: "#6c757d", size: 60, values: axisValues(unit), ...(unit === "bytes" ? { incrs: BYTE_STEPS } : {}) }],
      series: [{}, ...series.map(([, label], i) => ({ label, stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: false }))]
    },
    data,
    figure
  )
}

const showLatest = (id, unit, labels, columns) => {
  const caption = $(`chart-${id}`).querySelector("figcaption")
  const span = caption.querySelector(".latest") ?? caption.appendChild(el("span", { class: "latest" }))
  span.textContent = labels.map((label, i) => {
    const value = latest(columns[i])
    return `${label} ${value === null ? "–" : unit === "bytes" ? bytes(value) : number(value, value < 10 ? 1 : 0)}`
  }).join(" · ")
}

const drawCharts = (history) => {
  for (const chart of CHARTS) {
    const columns = chart.series.map(([key]) => history.series[key])
    if (!charts[chart.id]) makeChart(chart.id, chart.unit, chart.series, [history.t, ...columns])
    else charts[chart.id].setData([history.t, ...columns])
    showLatest(chart.id, chart.unit, chart.series.map(([, label]) => label), columns)
  }
  const ids = Object.keys(history.shards)
  const columns = ids.map((id) => history.shards[id])
  if (ids.join() !== shardIds) {
    shardIds = ids.join()
    makeChart("shards", "bytes", ids.map((id) => [id, shardLabel(id)]), [history.t, ...columns])
  } else charts.shards.setData([history.t, ...columns])
  showLatest("shards", "bytes", ids.map(shardLabel), columns)
}

// --- panels ------------------------------------------------------------------------------------

const fillTable = (id, rows, empty) => {
  const body = $(id).tBodies[0]
  body.replaceChildren(...(rows.length > 0 ? rows : [el("tr", {}, el("td", { colspan: "9", class: "muted" }, empty))]))
}

const drawPanels = (status) => {
  const lakeShards = new Map((status.lake?.shards ?? []).map((s) => [s.shardId, s]))
  fillTable(
    "shards",
    status.consumer.shards.map((s) => {
      const behind = s.heartbeatLsn ? walBehind(status.source.walLsn, s.heartbeatLsn) : null
      const lake = lakeShards.get(s.shardId)
      return el(
        "tr",
        { dataset: { shard: s.shardId } },
        el("td", { class: "shard" }, s.shardId),
        el("td", { class: "lsn", title: s.appliedSequence ?? "" }, shortSequence(s.appliedSequence)),
        el("td", { class: "lsn", title: s.checkpointSequence ?? "" }, shortSequence(s.checkpointSequence)),
        el("td", { class: "lsn" }, s.heartbeatLsn ?? "–"),
        el("td", { class: "num" }, bytes(behind)),
        el("td", { class: "lsn" }, lake ? `${lake.heartbeatLsn} (${ago(lake.emittedAt)})${lake.counted ? "" : " closed"}` : "–")
      )
    }),
    "no shard applied yet"
  )

  const activity = status.lakeActivity
  const dead = activity?.deadLetters
  $("dead-summary").textContent = !activity
    ? "the lake is not read"
    : activity.error
      ? `cannot read the lake: ${activity.error}`
      : `${number(dead.count)} in the last ${dead.lookbackDays} days${dead.count > dead.newest.length ? ` (newest ${dead.newest.length} shown)` : ""} · the records themselves stay in the lake under dead-letter/`
  fillTable(
    "dead-letters",
    (dead?.newest ?? []).map((d) =>
      el(
        "tr",
        { title: d.key },
        el("td", {}, `${clock(d.at)} (${ago(d.at)})`),
        el("td", { class: "shard" }, d.shardId ?? "–"),
        el("td", { class: "lsn", title: d.sequenceNumber ?? "" }, `${shortSequence(d.sequenceNumber)}${d.subSequenceNumber !== null ? `/${d.subSequenceNumber}` : ""}`),
        el("td", { class: "reason" }, d.reason)
      )
    ),
    "none"
  )

  $("lake-summary").textContent =
    activity && !activity.error ? `${number(activity.rawLastHour.objects)} raw objects (${bytes(activity.rawLastHour.bytes)}) written in the last hour` : ""
  fillTable(
    "lake-objects",
    (activity?.newestRawObjects ?? []).slice(0, 10).map((o) =>
      el("tr", { title: o.key }, el("td", {}, `${clock(o.lastModified)} (${ago(o.lastModified)})`), el("td", { class: "num" }, bytes(o.size)), el("td", { class: "lsn" }, shortKey(o.key)))
    ),
    "no raw object in the last hour"
  )

  $("paused-summary").textContent =
    status.paused.length === 0 ? "none: every table is applied" : "a source schema change broke a column the warehouse uses: decide, then totes warehouse resume --table T"
  fillTable(
    "paused",
    status.paused.map((t) =>
      el("tr", {}, el("td", {}, t.table), el("td", {}, t.column), el("td", {}, t.detail), el("td", { class: "lsn" }, t.consistentBeforeLsn), el("td", { class: "num" }, number(t.parkedEvents)))
    ),
    "none"
  )
  fillTable(
    "schema-changes",
    [...status.reader.schemaChanges].reverse().slice(0, 10).map((c) => el("tr", {}, el("td", {}, `${clock(c.at)}`), el("td", { class: "lsn" }, c.lsn), el("td", {}, c.summary))),
    "none seen by the reader"
  )
}

// The initial snapshot and the newest repair, table by table (the server derives the figures: services/status/load-progress.ts).
const duration = (seconds) => (seconds === null || seconds === undefined ? "–" : seconds < 120 ? `${seconds.toFixed(1)} s` : seconds < 7200 ? `${(seconds / 60).toFixed(1)} min` : `${(seconds / 3600).toFixed(1)} h`)
const drawLoads = (loads) => {
  $("loads-summary").replaceChildren(...(loads.length > 0 ? loads.map((load) => el("div", { dataset: { kind: load.kind } }, load.summary)) : [el("div", {}, "no initial snapshot running, no repair requested")]))
  fillTable(
    "loads",
    loads.flatMap((load) =>
      load.tables.map((t) => {
        // A bar of rows read against the source's estimate (while it runs and the estimate is known).
        const share = t.state === "running" && t.estimatedRows ? Math.min(1, t.rows / t.estimatedRows) : t.state === "done" ? 1 : null
        return el(
          "tr",
          { dataset: { kind: load.kind, table: t.table, state: t.state }, title: t.detail },
          el("td", {}, load.kind),
          el("td", {}, t.table),
          el("td", {}, t.state),
          el("td", { class: "num" }, number(t.rows)),
          el("td", { class: "num" }, t.estimatedRows === null ? "–" : `~${number(t.estimatedRows)}`),
          el("td", {}, share === null ? "" : el("progress", { max: "1", value: String(share) })),
          el("td", { class: "num" }, t.rowsPerSecond === null ? "–" : number(Math.round(t.rowsPerSecond))),
          el("td", { class: "num" }, t.state === "running" ? duration(t.etaSeconds) : "–")
        )
      })
    ),
    "nothing loading"
  )
}

const walBehind = (wal, lsn) => {
  const value = (text) => {
    const [high, low] = text.split("/")
    return BigInt(`0x${high}`) * 0x100000000n + BigInt(`0x${low}`)
  }
  const diff = value(wal) - value(lsn)
  return Number(diff < 0n ? 0n : diff)
}

const drawMarks = (status) => {
  $("wal").textContent = status.source.walLsn
  $("through").textContent = status.consumer.consistentThroughLsn ?? "–"
  $("through-at").textContent = status.consumer.consistentThroughAt
    ? `every change committed before ${clock(status.consumer.consistentThroughAt)} is in the warehouse (${ago(status.consumer.consistentThroughAt)}) · lag ${bytes(status.consumer.lagBytes)}`
    : "not consistent through any position yet"
  const lake = status.lake
  $("lake-mark").textContent = lake?.watermarkLsn ?? "–"
  $("lake-mark-at").textContent = !lake
    ? "the lake is not read"
    : lake.error
      ? `cannot read the lake: ${lake.error}`
      : lake.watermarkAt
        ? `the lake holds every change committed before ${clock(lake.watermarkAt)} (${ago(lake.watermarkAt)}) · lag ${bytes(lake.lagBytes)}`
        : "no heartbeat archived yet"
}

// --- refresh -----------------------------------------------------------------------------------

const state = { snapshot: null, refreshes: 0 }
window.totesConsole = { charts, state }

const draw = (snapshot) => {
  document.title = snapshot.title
  $("title").textContent = snapshot.title
  $("updated").textContent = snapshot.updatedAt ? `reading of ${clock(snapshot.updatedAt)} · every ${snapshot.intervalMs / 1000} s · up since ${clock(snapshot.startedAt)}` : "waiting for the first reading…"
  $("mode-note").textContent =
    snapshot.mode === "dev"
      ? "Events and latency: the components' EMF metric lines (what CloudWatch receives). Lag, WAL and shards: status readings."
      : "Against a stage, from successive status readings and the warehouse itself: applied = rows the consumer wrote to the warehouse's mirror of source rows (its statistics; changes of one row applied together count once), latency = fact rows applied since the previous reading, WAL rates = positions. Events published are counted by the reader's metrics only (CloudWatch)."
  drawPipeline(snapshot.stages)
  drawCharts(snapshot.history)
  drawLoads(snapshot.loads ?? [])
  if (snapshot.status) {
    drawMarks(snapshot.status)
    drawPanels(snapshot.status)
  }
  $("errors").replaceChildren(...(snapshot.errors.length > 0 ? snapshot.errors.map((e) => el("li", {}, e)) : [el("li", { class: "muted" }, "none")]))
}

const refresh = async () => {
  let interval = 1000
  try {
    const response = await fetch("/api/console", { cache: "no-store" })
    if (!response.ok) throw new Error(`HTTP ${response.status}`)
    const snapshot = await response.json()
    interval = snapshot.intervalMs
    state.snapshot = snapshot
    draw(snapshot)
    state.refreshes++
    $("offline").hidden = true
  } catch {
    $("offline").hidden = false
  }
  setTimeout(refresh, interval)
}

window.addEventListener("resize", () => {
  for (const [id, chart] of Object.entries(charts)) chart.setSize({ width: Math.max(240, $(`chart-${id}`).clientWidth - 14), height: 170 })
})

refresh()
