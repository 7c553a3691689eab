(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("timeline-data").textContent);
  var SVGNS = "http://www.w3.org/2000/svg";
  var LABEL_W = 330, RIGHT = 18, AXIS_H = 86;
  var H_STATUS = 16, H_RCPT = 11, H_SENDER = 16, H_AGG = 30, H_AGG_R = 20, PAD = 5;
  var byId = function (id) { return document.getElementById(id); };
  var view = { a: 0, b: Math.max(D.end, 1) };
  var state = { batch: "", status: "", reason: "", q: "", rcpt: true, selected: null };

  function el(tag, attrs, parent) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs) { for (var k in attrs) { if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]); } }
    if (parent) parent.appendChild(e);
    return e;
  }
  function title(e, text) { var t = el("title", null, e); t.textContent = text; return e; }
  function pad2(n) { return (n < 10 ? "0" : "") + n; }
  var MONTHS = ["Jan","Feb","Mar","Apr","May","Jun","Jul","Aug","Sep","Oct","Nov","Dec"];
  function date(t) { return new Date(D.start_ms + t * 1000); }
  function iso(t) {
    var d = date(t);
    return d.getUTCFullYear() + "-" + pad2(d.getUTCMonth() + 1) + "-" + pad2(d.getUTCDate()) + " " +
      pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes()) + (d.getUTCSeconds() ? ":" + pad2(d.getUTCSeconds()) : "") + "Z";
  }
  function dur(s) {
    s = Math.round(Math.abs(s));
    if (s === 0) return "0s";
    var out = "", units = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];
    for (var i = 0; i < units.length; i++) {
      var n = Math.floor(s / units[i][1]);
      if (n) { out += n + units[i][0]; s -= n * units[i][1]; }
    }
    return out;
  }
  function fmtN(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }

  // ---- header, filters, legend ------------------------------------------------------------
  function fill(select, values, label) {
    var o = document.createElement("option"); o.value = ""; o.textContent = "all " + label; select.appendChild(o);
    values.forEach(function (v) {
      var x = document.createElement("option"); x.value = v; x.textContent = v; select.appendChild(x);
    });
  }
  fill(byId("f-batch"), D.batches, "batches");
  fill(byId("f-status"), D.statuses, "statuses");
  fill(byId("f-reason"), D.reasons, "reasons");

  function legend() {
    var box = byId("legend");
    var names = { status: "Email status", delivery: "Delivery", sender: "Sender" };
    ["status", "delivery", "sender"].forEach(function (g) {
      var div = document.createElement("span"); div.className = "grp";
      var b = document.createElement("b"); b.textContent = names[g]; div.appendChild(b);
      D.groups[g].forEach(function (k) {
        var s = document.createElement("span");
        var sw = document.createElement("span");
        sw.className = "sw" + (D.kinds[k].pattern ? " pat-" + D.kinds[k].pattern : "");
        sw.style.backgroundColor = D.kinds[k].color;
        s.appendChild(sw);
        s.appendChild(document.createTextNode((D.kinds[k].icon ? D.kinds[k].icon + " " : "") + D.kinds[k].label));
        s.setAttribute("data-kind", k);
        div.appendChild(s);
      });
      box.appendChild(div);
    });
    var m = document.createElement("span"); m.className = "grp";
    m.innerHTML = '<b>Marks</b><span><span class="ln"></span>▾ stuck threshold (' + D.stuck_after_text +
      ' in queue)</span><span><span class="mk"></span>timeline event</span><span><span class="fb"></span>fault</span>' +
      '<span>▮ SMTP attempt</span>';
    box.appendChild(m);
  }
  legend();

  // ---- lanes: filtering and layout ----------------------------------------------------------
  function laneVisible(l) {
    if (state.batch && l.batch !== state.batch) return false;
    if (state.status && l.status !== state.status) return false;
    if (state.reason && l.reasons.indexOf(state.reason) < 0 && l.reason !== state.reason) return false;
    if (state.q) {
      var q = state.q.toLowerCase();
      var hay = (l.label + " " + (l.members || []).join(" ") + " " + l.rows.map(function (r) { return r.label; }).join(" ")).toLowerCase();
      if (hay.indexOf(q) < 0) return false;
    }
    return true;
  }
  function rowHeight(lane, i) {
    if (lane.kind === "sender") return H_SENDER;
    if (lane.kind === "group") return i === 0 ? H_AGG : H_AGG_R;
    return i === 0 ? H_STATUS : H_RCPT;
  }
  function laneRows(lane) {
    if (lane.kind === "invoice" && !state.rcpt) return lane.rows.slice(0, 1);
    return lane.rows;
  }
  function laneHeight(lane) {
    var rows = laneRows(lane), h = PAD * 2;
    for (var i = 0; i < rows.length; i++) h += rowHeight(lane, i) + (i ? 3 : 0);
    var text = lane.kind === "invoice" ? (lane.reason ? 44 : 34) : lane.kind === "group" ? 46 : 34;
    return Math.max(h, text);
  }
  function fit(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }
  function reasonShort(code, n) { return fit(code, n); }

  // ---- drawing ----------------------------------------------------------------------------
  var W = 1200;
  function xOf(t) { return LABEL_W + (t - view.a) / (view.b - view.a) * (W - LABEL_W - RIGHT); }
  function tOf(x) { return view.a + (x - LABEL_W) / (W - LABEL_W - RIGHT) * (view.b - view.a); }
  function clampX(x) { return Math.max(LABEL_W, Math.min(W - RIGHT, x)); }

  function niceStep(span) {
    var steps = [1, 5, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800,
      604800, 1209600, 2592000, 7776000, 31536000];
    var want = span / Math.max(4, Math.floor((W - LABEL_W) / 110));
    for (var i = 0; i < steps.length; i++) if (steps[i] >= want) return steps[i];
    return steps[steps.length - 1];
  }

  function drawAxis(svg, lanesTop) {
    var step = niceStep(view.b - view.a);
    // ticks are aligned to UTC day boundaries relative to the start's epoch
    var epoch = D.start_ms / 1000;
    var first = Math.ceil((epoch + view.a) / step) * step - epoch;
    var g = el("g", { "class": "axis" }, svg);
    for (var t = first; t <= view.b + 1e-9; t += step) {
      var x = xOf(t); if (x < LABEL_W - 0.5 || x > W - RIGHT - 34) continue;
      el("line", { x1: x, x2: x, y1: AXIS_H - 30, y2: AXIS_H, "class": "tick" }, g);
      var d = date(t), lab;
      if (step >= 86400) lab = MONTHS[d.getUTCMonth()] + " " + d.getUTCDate();
      else if (d.getUTCHours() === 0 && d.getUTCMinutes() === 0 && d.getUTCSeconds() === 0 || t === first)
        lab = MONTHS[d.getUTCMonth()] + " " + d.getUTCDate() + " " + pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes());
      else lab = pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes()) + (step < 60 ? ":" + pad2(d.getUTCSeconds()) : "");
      var tx = el("text", { x: x + 3, y: AXIS_H - 18, "class": "tlabel" }, g); tx.textContent = lab;
      var ts = el("text", { x: x + 3, y: AXIS_H - 6, "class": "tsub" }, g);
      ts.textContent = (t < 0 ? "-" : "+") + dur(t);
    }
    var tz = el("text", { x: 8, y: AXIS_H - 18, "class": "tlabel" }, g); tz.textContent = "time (UTC)";
    var ts2 = el("text", { x: 8, y: AXIS_H - 6, "class": "tsub" }, g); ts2.textContent = "offset from start " + D.start.replace("T", " ");
    return lanesTop;
  }

  function markerLabels(svg) {
    // markers (timeline events) and fault bands along the top of the axis; close ones are merged
    var items = [];
    D.markers.forEach(function (m) { if (m[0] >= view.a && m[0] <= view.b) items.push({ t: m[0], kind: m[1], label: m[2], detail: m[3] }); });
    items.sort(function (p, q) { return p.t - q.t; });
    var merged = [];
    items.forEach(function (m) {
      var last = merged[merged.length - 1];
      if (last && xOf(m.t) - xOf(last.t) < 6) { last.n += 1; last.details.push(m.detail); last.labels.push(m.label); if (m.kind === "expiry") last.kind = "expiry"; }
      else merged.push({ t: m.t, kind: m.kind, n: 1, labels: [m.label], details: [m.detail] });
    });
    // three rows of labels; each label takes the first row where it fits whole, else the row with the most
    // room and is shortened to it (the full text is on hover); near the right edge it hangs to the left
    var LEVELS = 3, CW = 5.7, right = W - RIGHT, ends = [];
    for (var i = 0; i < LEVELS; i++) ends.push(-1e9);
    var g = el("g", { "class": "mlabels" }, svg);
    var placed = merged.map(function (m) {
      var text = m.n === 1 ? m.labels[0] : m.n + " events: " + m.labels[0] + ", …";
      var done = m.labels.every(function (l) { return / completed$/.test(l); });
      var joined = done ? m.labels.map(function (l) { return l.replace(/ completed$/, ""); }).join(", ") + " completed"
        : m.labels.join(" · ");
      if (m.n > 1 && joined.length <= 60) text = joined;
      return { m: m, x: xOf(m.t), text: text };
    });
    placed.forEach(function (p) {
      var t = el("text", { x: p.x + 3, y: 11, "class": "mlabel " + p.m.kind, "data-marker": p.m.kind }, g);
      t.textContent = p.text; title(t, p.m.details.join("\n"));
      var w = (t.getComputedTextLength ? t.getComputedTextLength() : p.text.length * CW) + 6;
      var lv = -1, anchorEnd = false, l, free = -1;
      for (l = 0; l < LEVELS && lv < 0; l++) {  // a row where it fits whole, to the right of its line
        if (p.x + 3 >= ends[l]) { if (free < 0) free = l; if (p.x + 3 + w <= right) lv = l; }
      }
      for (l = 0; l < LEVELS && lv < 0; l++) {  // else hanging to the left of its line
        if (p.x - 3 - w >= Math.max(ends[l], LABEL_W)) { lv = l; anchorEnd = true; }
      }
      if (lv < 0 && free >= 0 && right - p.x - 3 >= 40) {  // else shortened to the room left of the edge
        lv = free;
        var keep = Math.max(4, Math.floor(p.text.length * (right - p.x - 9) / w) - 1);
        t.textContent = p.text.slice(0, keep) + "…";
        w = (t.getComputedTextLength ? t.getComputedTextLength() : keep * CW) + 6;
      }
      var line = el("line", { x1: p.x, x2: p.x, y1: 2 + Math.max(lv, 0) * 12, y2: AXIS_H,
        "class": "marker" + (p.m.kind === "expiry" ? " marker-expiry" : "") }, g);
      title(line, p.m.details.join("\n"));
      if (lv < 0) { g.removeChild(t); return; }  // no room anywhere: the line alone, its text on hover
      ends[lv] = anchorEnd ? p.x + 3 : p.x + 3 + w;
      t.setAttribute("y", 11 + lv * 12);
      if (anchorEnd) { t.setAttribute("x", p.x - 3); t.setAttribute("text-anchor", "end"); }
    });
    D.faults.forEach(function (f) {
      if (f[1] < view.a || f[0] > view.b) return;
      var x0 = clampX(xOf(f[0]));
      var t = el("text", { x: x0 + 3, y: 47, "class": "flabel", "data-fault": f[2] }, g);
      t.textContent = f[3]; title(t, f[4]);
    });
  }

  function spanTitle(s) { return s[5]; }

  function drawSpans(g, row, y, h, lane) {
    var minW = 2.5;
    row.spans.forEach(function (s) {
      if (s[1] < view.a || s[0] > view.b) return;
      var x0 = clampX(xOf(s[0])), x1 = clampX(xOf(s[1]));
      var w = Math.max(minW, x1 - x0);
      var r = el("rect", { x: x0, y: y, width: w, height: h, rx: h > 10 ? 2 : 1, fill: fillOf(s[2]),
        "class": "span k-" + s[2], "data-kind": s[2], "data-reason": s[4] || null,
        "data-start": s[0], "data-end": s[1] }, g);
      title(r, spanTitle(s));
      r.addEventListener("click", function (ev) { ev.stopPropagation(); showDetails(lane, s); });
      if (h >= 11) inLabel(g, s, x0, w, y, h, row.marks);
    });
    row.marks.forEach(function (m) {
      if (m[0] < view.a || m[0] > view.b) return;
      var x = xOf(m[0]), e;
      if (m[1] === "stuck") {
        e = el("g", { "data-mark": "stuck" }, g);
        el("line", { x1: x, x2: x, y1: y - 4, y2: y + h + 4, "class": "stuck" }, e);
        el("polygon", { points: [x - 4, y - 5, x + 4, y - 5, x, y].join(","), fill: "#b3261e" }, e);
      } else if (m[1] === "attempt") {
        e = el("rect", { x: x - 1, y: y - 1, width: 2.4, height: h + 2, fill: "#243140", "class": "attempt", "data-mark": "attempt" }, g);
      } else {
        var cy = y + h / 2, sz = 5;
        var pts = [x, cy - sz, x + sz, cy, x, cy + sz, x - sz, cy].join(",");
        e = el("polygon", { points: pts, fill: m[1] === "expiry" ? "#b3261e" : m[1] === "password" ? "#e0663a" : "#243140",
          "class": "umark", "data-mark": m[1] }, g);
      }
      title(e, m[3]);
    });
  }

  function dark(hex) {
    var n = parseInt(hex.slice(1), 16), r = n >> 16, g = (n >> 8) & 255, b = n & 255;
    return 0.299 * r + 0.587 * g + 0.114 * b < 150;
  }
  function inLabel(g, s, x0, w, y, h, marks) {
    // the state (and reason) written inside the bar when it fits, after any marker drawn on the bar
    var fs = h >= 14 ? 10.5 : 9, cw = fs * 0.58, icon = D.kinds[s[2]].icon ? D.kinds[s[2]].icon + " " : "";
    var start = x0 + 4, stop = x0 + w - 4;
    (marks || []).forEach(function (m) {
      var mx = xOf(m[0]);
      if (m[1] !== "attempt" && mx >= x0 - 6 && mx - 7 < start + 40) start = Math.max(start, mx + 8);
    });
    var room = stop - start;
    var full = icon + s[3] + (s[4] ? " · " + s[4] : ""), text = null;
    if (full.length * cw < room) text = full;
    else if ((icon + s[3]).length * cw < room) text = icon + s[3];
    if (!text) return;
    var kd = D.kinds[s[2]];
    // on a patterned bar a halo of the plain colour keeps the text readable
    var t = el("text", { x: start, y: y + h / 2 + fs * 0.36, "class": "inlabel", "font-size": fs,
      fill: dark(kd.color) ? "#ffffff" : "#1d2733", stroke: kd.pattern ? kd.color : null,
      "stroke-width": kd.pattern ? 3 : null, "paint-order": kd.pattern ? "stroke" : null,
      "stroke-linejoin": kd.pattern ? "round" : null }, g);
    t.textContent = text;
  }
  function fillOf(kind) { return D.kinds[kind].pattern ? "url(#pat-" + kind + ")" : D.kinds[kind].color; }
  function patterns(defs) {
    // the second cue: stripes (stuck), a cross-hatch (bounced), dots (token expired) over the colour
    Object.keys(D.kinds).forEach(function (k) {
      var kd = D.kinds[k]; if (!kd.pattern) return;
      var p = el("pattern", { id: "pat-" + k, width: 7, height: 7, patternUnits: "userSpaceOnUse" }, defs);
      el("rect", { width: 7, height: 7, fill: kd.color }, p);
      var ink = "rgba(255,255,255,0.55)";
      if (kd.pattern === "stripes") el("path", { d: "M-1,1 l2,-2 M0,7 l7,-7 M6,8 l2,-2", stroke: ink, "stroke-width": 1.6 }, p);
      else if (kd.pattern === "cross") el("path", { d: "M0,0 l7,7 M7,0 l-7,7", stroke: ink, "stroke-width": 1.2 }, p);
      else el("circle", { cx: 3.5, cy: 3.5, r: 1.4, fill: "rgba(255,255,255,0.75)" }, p);
    });
  }

  function drawSteps(g, row, y, h, lane, order) {
    // stacked counts over time: one path per kind
    var steps = row.steps, total = Math.max(1, row.total);
    var paths = {};
    order.forEach(function (k) { paths[k] = []; });
    var peak = {};
    for (var i = 0; i < steps.length; i++) {
      var t0 = steps[i][0], t1 = i + 1 < steps.length ? steps[i + 1][0] : D.end;
      if (t1 < view.a || t0 > view.b) continue;
      var x0 = clampX(xOf(t0)), x1 = Math.max(clampX(xOf(t1)), x0 + 1.5);
      var base = 0, c = steps[i][1];
      order.forEach(function (k) {
        var n = c[k] || 0; if (!n) return;
        if (!peak[k] || n > peak[k][0]) peak[k] = [n, t0];
        var yb = y + h - base / total * h, yt = y + h - (base + n) / total * h;
        paths[k].push("M" + x0.toFixed(1) + "," + yb.toFixed(1) + "H" + x1.toFixed(1) + "V" + yt.toFixed(1) + "H" + x0.toFixed(1) + "Z");
        base += n;
      });
    }
    order.forEach(function (k) {
      if (!paths[k].length) return;
      var p = el("path", { d: paths[k].join(""), fill: fillOf(k), "class": "span k-" + k, "data-kind": k }, g);
      title(p, lane.label + " · " + row.label + "\n" + D.kinds[k].label + ": up to " + fmtN(peak[k][0]) + " of " +
        fmtN(row.total) + " (first at " + iso(peak[k][1]) + ")" + (lane.reason ? "\n" + reasonLine(lane.reason) : ""));
      p.addEventListener("click", function (ev) { ev.stopPropagation(); showCounts(lane, row, ev); });
    });
    row.marks.forEach(function (m) {
      if (m[0] < view.a || m[0] > view.b) return;
      var x = xOf(m[0]);
      var sg = el("g", { "data-mark": "stuck" }, g);
      el("line", { x1: x, x2: x, y1: y - 4, y2: y + h + 4, "class": "stuck" }, sg);
      el("polygon", { points: [x - 4, y - 5, x + 4, y - 5, x, y].join(","), fill: "#b3261e" }, sg);
      title(sg, m[3]);
    });
  }

  function reasonLine(code) {
    var r = D.reason_info[code];
    return r ? code + ": " + r.title + " (" + r.steps + ")" : code;
  }

  function drawLane(svg, lane, y) {
    var h = laneHeight(lane);
    var g = el("g", { "class": "lane " + lane.kind, transform: "translate(0," + y + ")",
      "data-lane": lane.id, "data-batch": lane.batch, "data-status": lane.status, "data-reason": lane.reason || "",
      "data-reasons": lane.reasons.join(" ") }, svg);
    if (lane.kind === "invoice") g.setAttribute("data-invoice", lane.id);
    if (lane.kind === "sender") g.setAttribute("data-user", lane.id.slice(5));
    if (lane.kind === "group") { g.setAttribute("data-group", lane.id); g.setAttribute("data-count", lane.count); }
    if (state.selected === lane.id) g.setAttribute("class", "lane " + lane.kind + " selected");
    el("rect", { x: 0, y: 0, width: W, height: h, "class": "lane-bg" }, g);
    el("line", { x1: 0, x2: W, y1: h - 0.5, y2: h - 0.5, "class": "sep" }, g);
    var lab = el("text", { x: 10, y: PAD + 11, "class": "lane-label" }, g);
    lab.textContent = fit(lane.label, lane.kind === "invoice" ? 22 : 44);
    title(lab, lane.detail);
    lab.addEventListener("click", function () { showDetails(lane, null); });
    var lines = [];
    if (lane.kind === "sender") lines.push("now: " + (lane.status || ""));
    else if (lane.kind === "group") { if (lane.reason) lines.push(reasonShort(lane.reason, 60)); }
    else { lines.push((lane.batch || "") + " · " + lane.status); if (lane.reason) lines.push(reasonShort(lane.reason, 28)); }
    lines.forEach(function (text, i) {
      var sub = el("text", { x: 10, y: PAD + 23 + i * 11, "class": "lane-status" }, g);
      sub.textContent = text;
      if (lane.reason && text.indexOf(lane.reason) === 0) title(sub, reasonLine(lane.reason));
    });
    var rows = laneRows(lane), ry = PAD;
    rows.forEach(function (row, i) {
      var rh = rowHeight(lane, i);
      if (i > 0) ry += 3;
      var rg = el("g", { "class": "row", "data-row": row.label }, g);
      if ((lane.kind === "invoice" && i > 0) || lane.kind === "group") {
        var rl = el("text", { x: LABEL_W - 8, y: ry + rh - 1.5, "class": "lane-sub", "text-anchor": "end" }, rg);
        rl.textContent = fit(row.label, 30);
        title(rl, row.label);
      }
      if (row.steps) drawSteps(rg, row, ry, rh, lane, i === 0 ? D.groups.status : D.groups.delivery);
      else drawSpans(rg, row, ry, rh, lane);
      ry += rh;
    });
    return h;
  }

  function render() {
    var chart = byId("chart");
    W = Math.max(700, chart.clientWidth || document.documentElement.clientWidth || 1200);
    var axis = byId("axis"), lanes = byId("lanes");
    while (axis.firstChild) axis.removeChild(axis.firstChild);
    while (lanes.firstChild) lanes.removeChild(lanes.firstChild);
    axis.setAttribute("width", W); axis.setAttribute("height", AXIS_H);
    drawAxis(axis, 0);
    markerLabels(axis);
    var defs = el("defs", null, lanes);
    patterns(defs);
    var pat = el("pattern", { id: "faultfill", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, defs);
    el("rect", { width: 6, height: 6, fill: "rgba(217,71,43,0.07)" }, pat);
    el("rect", { width: 2.5, height: 6, fill: "rgba(217,71,43,0.22)" }, pat);
    var back = el("g", { "class": "back" }, lanes);
    var y = 0, shown = 0;
    var head = function (text) {
      var t = el("text", { x: 10, y: y + 15, "class": "section" }, lanes); t.textContent = text; y += 22;
    };
    if (D.senders.length) {
      head("SENDERS (" + D.senders.length + ")");
      D.senders.forEach(function (l) { y += drawLane(lanes, l, y); });
    }
    var vis = D.lanes.filter(laneVisible);
    head((D.aggregated ? "INVOICES (" + fmtN(D.n_invoices) + ", AGGREGATED BY BATCH × STATUS × REASON)" : "INVOICES (" + D.n_invoices + ")"));
    vis.forEach(function (l) { y += drawLane(lanes, l, y); shown += D.aggregated ? l.count : 1; });
    byId("empty").style.display = vis.length ? "none" : "block";
    var H = Math.max(y + 6, 40);
    lanes.setAttribute("width", W); lanes.setAttribute("height", H);
    // behind the lanes: fault bands, marker lines, run end
    D.faults.forEach(function (f) {
      if (f[1] < view.a || f[0] > view.b) return;
      var x0 = clampX(xOf(f[0])), x1 = clampX(xOf(f[1]));
      title(el("rect", { x: x0, y: 0, width: Math.max(2, x1 - x0), height: H, "class": "fault", "data-fault": f[2] }, back), f[4]);
    });
    D.markers.forEach(function (m) {
      if (m[0] < view.a || m[0] > view.b) return;
      var x = xOf(m[0]);
      title(el("line", { x1: x, x2: x, y1: 0, y2: H, "class": "marker" + (m[1] === "expiry" ? " marker-expiry" : ""), "data-marker": m[1] }, back), m[3]);
    });
    if (D.end >= view.a && D.end <= view.b) el("line", { x1: xOf(D.end), x2: xOf(D.end), y1: 0, y2: H, "class": "endline" }, back);
    byId("shown").textContent = "showing " + fmtN(shown) + " of " + fmtN(D.n_invoices) + " invoices";
    byId("window").textContent = iso(view.a) + " → " + iso(view.b) + "  (" + dur(view.b - view.a) + ")";
    var full = Math.max(D.end, 1);
    byId("r-from").value = Math.round(view.a / full * 1000);
    byId("r-to").value = Math.round(view.b / full * 1000);
    hooks.forEach(function (f) { f(); });
  }
  var hooks = [];
  // what the player (player.js) needs of the chart
  window.mailsimTimeline = { D: D, view: view, xOf: xOf, tOf: tOf, setView: function (a, b) { setView(a, b); },
    width: function () { return W; }, labelWidth: LABEL_W, right: RIGHT, afterRender: function (f) { hooks.push(f); },
    params: function () { return params; } };

  // ---- details panel -------------------------------------------------------------------------
  function reasonBlock(code) {
    var r = D.reason_info[code];
    if (!r) return "";
    return '<div class="reason"><code>' + esc(code) + "</code> " + esc(r.title) + " — " + esc(r.steps) + "<br>fix: " + esc(r.fix) + "</div>";
  }
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; }); }
  function showDetails(lane, span) {
    state.selected = lane.id;
    var box = byId("details");
    var text = span ? span[5] : lane.detail;
    var codes = span ? (span[4] ? [span[4]] : []) : lane.reasons;
    box.innerHTML = "<div>" + esc(text) + "</div>" + codes.map(reasonBlock).join("");
    render();
  }
  function showCounts(lane, row, ev) {
    var t = tOf(ev.offsetX !== undefined ? ev.offsetX : LABEL_W), cur = {};
    row.steps.forEach(function (s) { if (s[0] <= t) cur = s[1]; });
    var parts = Object.keys(cur).map(function (k) { return D.kinds[k].label + ": " + fmtN(cur[k]); });
    state.selected = lane.id;
    byId("details").innerHTML = "<div>" + esc(lane.detail) + "\n" + esc(row.label) + " at " + esc(iso(t)) + ": " +
      esc(parts.join(", ")) + "</div>" + (lane.reason ? reasonBlock(lane.reason) : "");
    render();
  }

  // ---- zoom and pan --------------------------------------------------------------------------
  var MIN_SPAN = 30;
  function setView(a, b) {
    var full = Math.max(D.end, 1);
    if (b - a < MIN_SPAN) { var c = (a + b) / 2; a = c - MIN_SPAN / 2; b = c + MIN_SPAN / 2; }
    if (b - a > full) { a = 0; b = full; }
    if (a < 0) { b -= a; a = 0; }
    if (b > full) { a -= b - full; b = full; }
    view.a = Math.max(0, a); view.b = Math.min(full, b);
    render();
  }
  function zoom(f, at) {
    if (at === undefined) at = (view.a + view.b) / 2;
    setView(at - (at - view.a) * f, at + (view.b - at) * f);
  }
  function activity() {
    var ts = [];
    D.markers.forEach(function (m) { ts.push(m[0]); });
    D.faults.forEach(function (f) { ts.push(f[0]); if (f[1] < D.end) ts.push(f[1]); });
    D.lanes.concat(D.senders).forEach(function (l) {
      l.rows.forEach(function (r) {
        r.spans.forEach(function (s) { if (s[0] > 0) ts.push(s[0]); if (s[1] < D.end) ts.push(s[1]); });
        r.marks.forEach(function (m) { ts.push(m[0]); });
        if (r.steps) r.steps.forEach(function (s) { if (s[0] > 0) ts.push(s[0]); });
      });
    });
    ts = ts.filter(function (t) { return t >= 0 && t <= D.end; });
    if (!ts.length) return [0, Math.max(D.end, 1)];
    var lo = Math.min.apply(null, ts), hi = Math.max.apply(null, ts);
    var m = Math.max((hi - lo) * 0.15, 1800);
    return [lo - m, hi + m];
  }
  var lanesSvg = byId("lanes");
  lanesSvg.addEventListener("wheel", function (ev) {
    if (!ev.ctrlKey && !ev.shiftKey && Math.abs(ev.deltaX) < Math.abs(ev.deltaY) && !ev.altKey && ev.offsetX < LABEL_W) return;
    ev.preventDefault();
    zoom(ev.deltaY > 0 ? 1.25 : 0.8, tOf(Math.max(LABEL_W, ev.offsetX)));
  }, { passive: false });
  var drag = null;
  lanesSvg.addEventListener("mousedown", function (ev) { if (ev.offsetX > LABEL_W) drag = { x: ev.clientX, a: view.a, b: view.b }; });
  window.addEventListener("mouseup", function () { drag = null; });
  window.addEventListener("mousemove", function (ev) {
    if (!drag) return;
    var dt = (ev.clientX - drag.x) / (W - LABEL_W - RIGHT) * (drag.b - drag.a);
    if (Math.abs(ev.clientX - drag.x) > 2) setView(drag.a - dt, drag.b - dt);
  });
  byId("z-in").addEventListener("click", function () { zoom(0.5); });
  byId("z-out").addEventListener("click", function () { zoom(2); });
  byId("z-all").addEventListener("click", function () { setView(0, D.end); });
  byId("z-fit").addEventListener("click", function () { var a = activity(); setView(a[0], a[1]); });
  byId("r-from").addEventListener("input", function (ev) {
    var a = ev.target.value / 1000 * D.end; setView(Math.min(a, view.b - MIN_SPAN), view.b);
  });
  byId("r-to").addEventListener("input", function (ev) {
    var b = ev.target.value / 1000 * D.end; setView(view.a, Math.max(b, view.a + MIN_SPAN));
  });
  ["batch", "status", "reason"].forEach(function (k) {
    byId("f-" + k).addEventListener("change", function (ev) { state[k] = ev.target.value; render(); });
  });
  byId("f-q").addEventListener("input", function (ev) { state.q = ev.target.value.trim(); render(); });
  byId("f-rcpt").addEventListener("change", function (ev) { state.rcpt = ev.target.checked; render(); });
  window.addEventListener("resize", function () { render(); });

  // the address can set the initial state: #view=FROM,TO (seconds from start)&batch=B&status=S&reason=R&q=TEXT
  var params = {};
  (location.hash || "").replace(/^#/, "").split("&").forEach(function (kv) {
    var i = kv.indexOf("="); if (i > 0) params[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
  });
  var m = /^(-?\d+),(-?\d+)$/.exec(params.view || "");
  if (m) { view.a = +m[1]; view.b = +m[2]; }
  else if (D.view) { view.a = D.view[0]; view.b = D.view[1]; }
  ["batch", "status", "reason"].forEach(function (k) {
    if (params[k] !== undefined) { state[k] = params[k]; byId("f-" + k).value = params[k]; }
  });
  if (params.q !== undefined) { state.q = params.q; byId("f-q").value = params.q; }
  if (D.aggregated) byId("f-rcpt").parentNode.style.display = "none";
  setView(view.a, view.b);
  document.body.setAttribute("data-rendered", "1");
})();
