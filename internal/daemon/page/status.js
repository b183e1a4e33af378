"use strict";
(function () {
  var REFRESH = 5000;
  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function cell(tr, field, text, cls) {
    var td = el("td", text, cls);
    td.setAttribute("data-field", field);
    tr.appendChild(td);
    return td;
  }
  function zero(t) { return !t || t.indexOf("0001-01-01") === 0; }
  function iso(t) { return zero(t) ? "-" : new Date(t).toISOString().replace(/\.\d+Z$/, "Z"); }
  function dur(s) {
    if (s === null || s === undefined) return "-";
    s = Math.max(0, Math.floor(s));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
    if (d) return d + "d" + h + "h";
    if (h) return h + "h" + m + "m";
    if (m) return m + "m" + r + "s";
    return r + "s";
  }
  function ago(t, now) { return zero(t) ? "never" : dur((now - new Date(t)) / 1000) + " ago"; }
  function bytes(n) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }
  function spark(hist) {
    var ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 120 24");
    svg.setAttribute("preserveAspectRatio", "none");
    var bg = document.createElementNS(ns, "rect");
    bg.setAttribute("width", "120");
    bg.setAttribute("height", "24");
    svg.appendChild(bg);
    if (!hist || hist.length === 0) return svg;
    // One hour across, one unit per 30 s sample; the newest on the right.
    var maxv = 1, i, pts = [], end = new Date(hist[hist.length - 1].at).getTime();
    for (i = 0; i < hist.length; i++) maxv = Math.max(maxv, hist[i].seconds);
    for (i = 0; i < hist.length; i++) {
      var x = 120 - (end - new Date(hist[i].at).getTime()) / 30000;
      pts.push(Math.max(0, x).toFixed(1) + "," + (23 - 22 * hist[i].seconds / maxv).toFixed(1));
    }
    if (pts.length === 1) pts.unshift("119," + pts[0].split(",")[1]);
    var pl = document.createElementNS(ns, "polyline");
    pl.setAttribute("points", pts.join(" "));
    svg.appendChild(pl);
    var title = document.createElementNS(ns, "title");
    title.textContent = "lag over the last hour, up to " + dur(maxv);
    svg.appendChild(title);
    return svg;
  }
  function runnerWords(r) {
    var i = r.indexOf("/");
    return (r.slice(0, i) === "sink" ? "Sink " : "Source ") + r.slice(i + 1);
  }
  function render(st) {
    var now = Date.now(), snap = st.store || {}, i;
    document.body.className = (snap.replicas && snap.replicas.length) ? "shared" : "";
    $("daemon").textContent = st.running ? "running " + st.version : "not running";
    $("updated").textContent = "updated " + new Date(now).toISOString().replace(/\.\d+Z$/, "Z");
    $("problem").hidden = true;

    var halts = st.halts || [], hl = $("halt-list");
    hl.textContent = "";
    for (i = 0; i < halts.length; i++) {
      var li = el("li");
      li.setAttribute("data-runner", halts[i].runner);
      li.appendChild(el("strong", runnerWords(halts[i].runner) + " is halted: "));
      li.appendChild(el("span", halts[i].error, "halt-error"));
      if (halts[i].fix) {
        li.appendChild(el("br"));
        li.appendChild(el("span", "Fix: " + halts[i].fix, "fix"));
      }
      li.appendChild(el("div", "It retries every 5 minutes; /readyz fails until it recovers.", "muted"));
      hl.appendChild(li);
    }
    $("halts").hidden = halts.length === 0;

    var used = snap.spool_bytes || 0, bound = st.spool_max_bytes || 0;
    var pct = bound ? Math.min(100, 100 * used / bound) : 0;
    var fill = $("spool-fill");
    fill.style.width = pct.toFixed(1) + "%";
    fill.className = pct >= 100 ? "full" : pct >= 80 ? "high" : "";
    var stext = $("spool-text");
    stext.textContent = bytes(used) + (bound ? " of " + bytes(bound) + " (" + pct.toFixed(1) + "%)" : "") +
      ", " + (snap.spool_events || 0) + " events" + (pct >= 100 ? ": full, polling paused until the sinks catch up" : "");
    stext.setAttribute("data-bytes", used);
    stext.setAttribute("data-max", bound);

    var halted = {};
    for (i = 0; i < halts.length; i++) halted[halts[i].runner] = true;
    var live = st.sources || {}, tb = $("sources").tBodies[0];
    tb.textContent = "";
    var srcs = snap.sources || [];
    for (i = 0; i < srcs.length; i++) {
      var s = srcs[i], l = live[s.name] || {}, tr = el("tr");
      tr.setAttribute("data-source", s.name);
      if (halted["source/" + s.name]) tr.className = "halted";
      cell(tr, "name", s.name);
      cell(tr, "provider", l.provider || "-");
      cell(tr, "tenant", l.tenant || "-");
      cell(tr, "watermark", iso(s.watermark), "time");
      cell(tr, "lag", zero(s.watermark) ? "-" : dur((now - new Date(s.watermark)) / 1000), "num");
      cell(tr, "lag_history", null).appendChild(spark(l.lag_history));
      cell(tr, "last_poll", ago(s.last_poll, now), "time");
      cell(tr, "events", s.events || 0, "num");
      cell(tr, "duplicates", s.duplicates || 0, "num");
      cell(tr, "last_error", s.last_error || "-", s.last_error ? "err" : "");
      var gaps = s.gaps || [], gt = [];
      for (var g = 0; g < gaps.length; g++) gt.push(iso(gaps[g].from) + " .. " + iso(gaps[g].to) + ": " + gaps[g].reason);
      cell(tr, "gaps", gt.length ? gt.join("; ") : "none", gt.length ? "err" : "");
      cell(tr, "owner", s.owner || "-", "owner");
      tb.appendChild(tr);
    }

    var slive = st.sinks || {};
    tb = $("sinks").tBodies[0];
    tb.textContent = "";
    var sinks = snap.sinks || [];
    for (i = 0; i < sinks.length; i++) {
      var k = sinks[i], kl = slive[k.name] || {}, row = el("tr");
      row.setAttribute("data-sink", k.name);
      if (halted["sink/" + k.name]) row.className = "halted";
      cell(row, "name", k.name);
      cell(row, "backlog", k.backlog || 0, "num");
      cell(row, "offset", k.offset || 0, "num");
      cell(row, "events_per_second", st.running ? (kl.events_per_second || 0).toFixed(1) : "-", "num");
      cell(row, "delivered", k.delivered || 0, "num");
      cell(row, "last_send", ago(k.last_send, now), "time");
      cell(row, "last_error", k.last_error || "-", k.last_error ? "err" : "");
      cell(row, "parked", st.running ? (kl.parked || 0) : "-", "num");
      cell(row, "owner", k.owner || "-", "owner");
      tb.appendChild(row);
    }

    var reps = snap.replicas || [], rl = $("replica-list");
    rl.textContent = "";
    for (i = 0; i < reps.length; i++) rl.appendChild(el("li", reps[i].id + ", last seen " + ago(reps[i].last_seen, now)));
    $("replicas").hidden = reps.length === 0;
    document.body.setAttribute("data-rendered", "1");
  }
  function refresh() {
    fetch("status.json", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) return r.text().then(function (t) { throw new Error("HTTP " + r.status + ": " + t); });
        return r.json();
      })
      .then(render)
      .catch(function (e) {
        var p = $("problem");
        p.textContent = "Cannot read status.json: " + e.message + " (showing the last state read).";
        p.hidden = false;
      })
      .then(function () { setTimeout(refresh, REFRESH); });
  }
  refresh();
})();
