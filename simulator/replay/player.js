// The timeline player: a playhead over the lanes, keyboard stepping, play/pause, captions, and the
// state of the moment in #playhead-state. Nothing is recomputed here: the frames (one per model step
// of the run, made in Python by simulator/replay/playhead.py) are deltas that are applied or undone.
(function () {
  "use strict";
  var TL = window.mailsimTimeline;
  if (!TL || !TL.D.player) return;
  var D = TL.D, P = D.player, F = P.frames;
  var byId = function (id) { return document.getElementById(id); };
  var SVGNS = "http://www.w3.org/2000/svg";
  // a frame: [t, first seq, last seq, label, notable, invoice deltas, count deltas, oldest queued, senders, replies, caption]
  var T = 0, cur = -1, playing = false, lastTick = 0, lastPanel = 0;
  var inv = new Int32Array(P.invoices.length).fill(-1), counts = {};
  var notable = [], captionAt = [], replyPrev = [], senderHist = P.senders.map(function () { return []; });
  (function index() {
    var cap = null, lastReply = -1;
    F.forEach(function (f, i) {
      if (f[4]) notable.push(i);
      if (f[10] !== null) cap = f[10];
      captionAt.push(cap);
      replyPrev.push(lastReply);
      if (f[9].length) lastReply = i;
      f[8].forEach(function (s) { senderHist[s[0]].push([i, s[1], s[2]]); });
    });
  })();

  function pad2(n) { return (n < 10 ? "0" : "") + n; }
  function iso(t) {
    var d = new Date(D.start_ms + t * 1000);
    return d.getUTCFullYear() + "-" + pad2(d.getUTCMonth() + 1) + "-" + pad2(d.getUTCDate()) + " " +
      pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes()) + ":" + pad2(d.getUTCSeconds()) + "Z";
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
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; }); }
  function fmtN(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }

  // ---- frames --------------------------------------------------------------------------------
  function apply(i, dir) {
    var f = F[i], k;
    f[5].forEach(function (d) { inv[d[0]] = dir > 0 ? d[2] : d[1]; });
    f[6].forEach(function (c) { k = c[0]; counts[k] = (counts[k] || 0) + dir * c[1]; });
  }
  function goFrame(k) {
    while (cur < k) { cur += 1; apply(cur, 1); }
    while (cur > k) { apply(cur, -1); cur -= 1; }
  }
  function frameAt(t) {  // the last frame at or before t: what `mailsim explain --at t` reports
    var lo = 0, hi = F.length - 1;
    while (lo < hi) { var mid = (lo + hi + 1) >> 1; if (F[mid][0] <= t) lo = mid; else hi = mid - 1; }
    return lo;
  }
  function senderAt(i, k) {
    var h = senderHist[i], out = null;
    for (var j = 0; j < h.length && h[j][0] <= k; j++) out = h[j];
    return out;
  }

  // ---- the state of the moment ---------------------------------------------------------------
  var ORDER = { "N/A": 0, "Pending": 1, "In Queue": 2, "Sent": 3 };
  function kindOf(st) {
    if (st[1] === "In Queue") return st[3] ? "queue-stuck" : st[2] ? "queue-blocked" : "queue";
    return { "N/A": "na", "Pending": "pending", "Sent": "sent" }[st[1]] || "pending";
  }
  function chip(st) {
    var k = kindOf(st), kd = D.kinds[k];
    var dark = k === "queue-stuck" || k === "sent" || k === "na";
    return '<span class="st" style="background:' + kd.color + ';color:' + (dark ? "#fff" : "#1d2733") + '">' +
      (kd.icon ? kd.icon + " " : "") + esc(st[1]) + (st[3] ? " · STUCK" : "") + "</span>";
  }
  function stateRow(st, attrs, first, n) {
    var why = st[2] || (st[1] === "In Queue" ? "awaiting the next poll" : "");
    var outs = st[4] ? '<span class="dim"> · ' + esc(st[4]) + "</span>" : "";
    return "<tr " + attrs + ' data-batch-status="' + esc(st[0]) + '" data-status="' + esc(st[1]) + '" data-reason="' +
      esc(st[2]) + '" data-stuck="' + (st[3] ? "1" : "0") + '"><td>' + first + "</td><td>" + chip(st) + "</td><td>" +
      esc(why) + outs + "</td>" + (n === null ? "" : '<td class="dim">' + esc(st[0] === "Draft" ? "batch Draft" : "") + "</td>") + "</tr>";
  }
  function invoiceRows() {
    var html = "";
    if (!D.aggregated) {
      var rows = [];
      for (var i = 0; i < inv.length; i++) if (inv[i] >= 0) rows.push([P.invoices[i], P.states[inv[i]]]);
      rows.forEach(function (r) { html += stateRow(r[1], 'data-inv="' + esc(r[0]) + '"', "<b>" + esc(r[0]) + "</b>", 0); });
      return html;
    }
    var keys = Object.keys(counts).filter(function (k) { return counts[k] > 0; }).map(Number);
    keys.sort(function (a, b) {
      var x = P.states[a], y = P.states[b];
      return (ORDER[x[1]] - ORDER[y[1]]) || (counts[b] - counts[a]) || (x[2] < y[2] ? -1 : 1);
    });
    keys.forEach(function (k) {
      html += stateRow(P.states[k], 'data-group="' + k + '" data-count="' + counts[k] + '"', "<b>" + fmtN(counts[k]) + "</b>", null);
    });
    return html;
  }
  function when(t) {  // a reply's time: the clock time, with the date when it is not the playhead's day
    var a = iso(t), b = iso(T);
    return a.slice(0, 10) === b.slice(0, 10) ? a.slice(11, 19) : a.slice(5, 10) + " " + a.slice(11, 16);
  }
  function renderState() {
    var k = cur, f = F[k], box = byId("playhead-state");
    var q = 0, stuck = 0;
    Object.keys(counts).forEach(function (s) {
      var st = P.states[s];
      if (st[1] === "In Queue") { q += counts[s]; if (st[3]) stuck += counts[s]; }
    });
    var oldest = f[7] === null ? null : T - f[7];
    var html = '<div class="ps-inv"><h3>Invoices</h3><table>' + invoiceRows() + "</table></div>";
    html += '<div class="ps-queue" data-queue="' + q + '" data-oldest="' + (oldest === null ? "" : oldest) + '" data-stuck="' +
      stuck + '"><h3>Queue</h3><div><b>' + fmtN(q) + "</b> waiting</div>" +
      (q ? "<div>oldest " + dur(oldest) + " in queue</div><div" + (stuck ? ' class="bad"' : "") + ">" + fmtN(stuck) +
        " stuck (more than " + dur(P.stuck_after) + ")</div>" : '<div class="dim">empty</div>') + "</div>";
    html += '<div class="ps-senders"><h3>Senders</h3><table>';
    P.senders.forEach(function (u, i) {
      var s = senderAt(i, k); if (!s) return;
      var kind = s[1], exp = s[2];
      if (kind === "sync-valid" && exp !== null && T >= exp) kind = "token-expired";
      var kd = D.kinds[kind], days = exp === null ? null : (exp - T) / 86400;
      var left = days === null ? "" : days > 0 ? days.toFixed(1) + "d left" : "expired " + (-days).toFixed(1) + "d ago";
      html += '<tr data-user="' + esc(u[0]) + '" data-sync="' + kind + '" data-expires="' + (exp === null ? "" : exp) + '"><td><b>' +
        esc(u[0]) + '</b></td><td><span class="st" style="background:' + kd.color + ";color:" +
        (kind === "sync-valid" || kind === "password-changed" ? "#1d2733" : "#fff") + '">' + (kd.icon ? kd.icon + " " : "") +
        esc(kd.label) + '</span></td><td class="' + (kind === "token-expired" ? "bad" : "dim") + '">' + left + "</td></tr>";
    });
    html += '</table></div><div class="ps-smtp"><h3>Latest SMTP replies</h3><ol>';
    var replies = [], j = F[k][9].length ? k : replyPrev[k];
    while (j >= 0 && replies.length < 5) { replies = F[j][9].concat(replies).slice(-5); j = replyPrev[j]; }
    if (!replies.length) html += '<li class="dim">none yet</li>';
    replies.slice().reverse().forEach(function (r) {
      html += '<li data-code="' + r[1] + '"><span class="' + (r[1] >= 400 ? "bad" : "ok") + '">' + r[1] + " " + esc(r[2]) +
        "</span> " + esc(when(r[0])) + " " + esc(r[3]) + " " + esc(r[4]) + (r[6] ? " spf=" + esc(r[6]) : "") + " " + esc(r[5]) + "</li>";
    });
    html += "</ol></div>";
    box.innerHTML = html;
    box.setAttribute("data-t", String(T));
    box.setAttribute("data-frame", String(k));
    var cap = captionAt[k] === null ? "" : captionAt[k];
    var capBox = byId("caption");
    if (capBox.textContent !== cap) capBox.textContent = cap;
    capBox.setAttribute("data-frame", String(k));
    byId("clock").textContent = iso(T) + "  (+" + dur(T) + ")";
    byId("stepinfo").textContent = "step " + (k + 1) + " of " + F.length + " · " + iso(f[0]).slice(11, 19) + " " + f[3];
  }

  // ---- the playhead on the chart -------------------------------------------------------------
  var line = null, knob = null, veil = null, aline = null;
  function place() {
    var lanes = byId("lanes"), axis = byId("axis");
    var x = TL.xOf(T), W = TL.width(), left = TL.labelWidth, right = W - TL.right;
    var vis = x >= left && x <= right;
    if (!line || !line.parentNode) {
      veil = document.createElementNS(SVGNS, "rect"); veil.setAttribute("class", "future");
      line = document.createElementNS(SVGNS, "line"); line.setAttribute("class", "playhead");
      aline = document.createElementNS(SVGNS, "line"); aline.setAttribute("class", "playhead");
      knob = document.createElementNS(SVGNS, "polygon"); knob.setAttribute("class", "playhead-knob");
      lanes.appendChild(veil); lanes.appendChild(line); axis.appendChild(aline); axis.appendChild(knob);
    }
    var H = lanes.getAttribute("height") || 0, AH = axis.getAttribute("height") || 0;
    var vx = Math.max(left, Math.min(right, x));
    veil.setAttribute("x", vx); veil.setAttribute("y", 0); veil.setAttribute("width", Math.max(0, right - vx));
    veil.setAttribute("height", H);
    [line, aline].forEach(function (l, i) {
      l.setAttribute("x1", x); l.setAttribute("x2", x); l.setAttribute("y1", 0); l.setAttribute("y2", i ? AH : H);
      l.style.display = vis ? "" : "none";
    });
    knob.setAttribute("points", [x - 7, AH - 12, x + 7, AH - 12, x, AH].join(","));
    knob.style.display = vis ? "" : "none";
  }
  TL.afterRender(function () { line = null; place(); });

  // ---- moving --------------------------------------------------------------------------------
  function setHash() {
    var h = (location.hash || "").replace(/^#/, "").split("&").filter(function (kv) { return kv && kv.indexOf("t=") !== 0; });
    h.push("t=" + Math.round(T));
    try { history.replaceState(null, "", "#" + h.join("&")); } catch (e) { /* a file: URL may refuse: harmless */ }
  }
  function follow() {  // keep the playhead in view (pan, keeping the zoom)
    var v = TL.view, span = v.b - v.a;
    if (T < v.a || T > v.b) TL.setView(T - span * 0.3, T + span * 0.7);
  }
  function moveTo(t, frame) {
    T = Math.max(0, Math.min(D.end, t));
    goFrame(frame === undefined ? frameAt(T) : frame);
    renderState(); follow(); place(); setHash();
  }
  function stepTo(k) { k = Math.max(0, Math.min(F.length - 1, k)); moveTo(F[k][0], k); }
  function nextNotable(dir) {
    var list = notable, k = cur;
    if (dir > 0) { for (var i = 0; i < list.length; i++) if (list[i] > k) return stepTo(list[i]); stepTo(F.length - 1); }
    else { for (var j = list.length - 1; j >= 0; j--) if (list[j] < k) return stepTo(list[j]); stepTo(0); }
  }
  function forward() { if (cur < F.length - 1) stepTo(cur + 1); else moveTo(D.end); }
  function speed() { return Number(byId("speed").value) || 3600; }
  function tick(now) {
    if (!playing) return;
    var dt = lastTick ? (now - lastTick) / 1000 : 0; lastTick = now;
    var t = T + dt * speed();
    if (t >= D.end) { t = D.end; setPlaying(false); }
    // the state panel is rebuilt when the step changes (and a few times a second for the ages),
    // not on every animation frame: a run of 300 invoice rows plays as smoothly as the tour
    var k = frameAt(t), redraw = k !== cur || now - lastPanel > 250 || !playing;
    T = t; goFrame(k);
    if (redraw) { renderState(); lastPanel = now; } else byId("clock").textContent = iso(T) + "  (+" + dur(T) + ")";
    follow(); place();
    if (playing) requestAnimationFrame(tick); else setHash();
  }
  function setPlaying(on) {
    playing = on; lastTick = 0;
    byId("p-play").textContent = on ? "⏸ pause" : "▶ play";
    if (on) { if (T >= D.end) moveTo(0); requestAnimationFrame(tick); } else setHash();
  }
  document.addEventListener("keydown", function (ev) {
    var tag = (ev.target && ev.target.tagName) || "";
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    if (ev.key === "ArrowRight") { if (ev.shiftKey) nextNotable(1); else forward(); }
    else if (ev.key === "ArrowLeft") {
      if (ev.shiftKey) nextNotable(-1); else stepTo(T > F[cur][0] ? cur : cur - 1);
    }
    else if (ev.key === " " || ev.key === "Spacebar") setPlaying(!playing);
    else if (ev.key === "Home") { setPlaying(false); stepTo(0); }
    else if (ev.key === "End") { setPlaying(false); moveTo(D.end); }
    else return;
    ev.preventDefault();
  });
  byId("p-prev").addEventListener("click", function () { stepTo(T > F[cur][0] ? cur : cur - 1); });
  byId("p-next").addEventListener("click", forward);
  byId("p-first").addEventListener("click", function () { stepTo(0); });
  byId("p-last").addEventListener("click", function () { moveTo(D.end); });
  byId("p-play").addEventListener("click", function () { setPlaying(!playing); });
  // click or drag on the time axis: the playhead goes there
  var axis = byId("axis"), scrubbing = false;
  function scrub(ev) {
    var r = axis.getBoundingClientRect(), x = ev.clientX - r.left;
    if (x >= TL.labelWidth) moveTo(Math.round(TL.tOf(x)));
  }
  axis.addEventListener("mousedown", function (ev) { scrubbing = true; setPlaying(false); scrub(ev); ev.preventDefault(); });
  window.addEventListener("mousemove", function (ev) { if (scrubbing) scrub(ev); });
  window.addEventListener("mouseup", function () { scrubbing = false; });

  // the address may name the moment: #t=SECONDS (from the scenario's start); else the playhead opens at
  // the left edge of the window shown (the activity span by default), so nothing moves on open
  var m = /^(-?\d+(?:\.\d+)?)$/.exec(TL.params().t || "");
  moveTo(m ? Math.round(+m[1]) : Math.max(0, Math.round(TL.view.a)));
  document.body.setAttribute("data-player", "1");
})();
