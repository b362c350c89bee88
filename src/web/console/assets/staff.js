// smsgate console, staff pages: the one script of the live page (no third-party code). It
// fetches the tables' rows (/staff/live/rows, rendered by the server with the page's own
// template) every few seconds and puts them in place without reloading, and derives each
// gateway's parts per minute from two successive "submitted" counts.
"use strict";
(function () {
  var box = document.getElementById("live-tables");
  if (!box) { return; }
  var every = parseInt(box.getAttribute("data-every"), 10) || 3000;
  var state = document.getElementById("live-state");
  var seen = {}; // gateway name -> {submits, at}

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function stamp() {
    var d = new Date();
    document.getElementById("live-updated").textContent =
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function rates() {
    var now = Date.now();
    var rows = document.querySelectorAll("#gateways-body tr[data-name]");
    Array.prototype.forEach.call(rows, function (tr) {
      var name = tr.getAttribute("data-name");
      var submits = parseInt(tr.getAttribute("data-submits"), 10) || 0;
      var before = seen[name];
      var cell = document.getElementById("gateway-rate-" + name);
      if (before && cell && now > before.at && submits >= before.submits) {
        cell.textContent = Math.round((submits - before.submits) * 60000 / (now - before.at));
      }
      seen[name] = { submits: submits, at: now };
    });
  }
  function ok(on) {
    if (!state) { return; }
    state.className = on ? "live" : "live off";
    state.title = on ? "" : state.getAttribute("data-off");
  }
  function refresh() {
    fetch("/staff/live/rows", { credentials: "same-origin", headers: { accept: "text/html" } })
      .then(function (r) {
        if (!r.ok || r.redirected) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        ["modems-body", "gateways-body"].forEach(function (id) {
          var fresh = doc.getElementById(id);
          var old = document.getElementById(id);
          if (fresh && old) { old.parentNode.replaceChild(document.importNode(fresh, true), old); }
        });
        rates();
        stamp();
        ok(true);
      })
      .catch(function () { ok(false); })
      .then(function () { setTimeout(refresh, every); });
  }
  rates();
  stamp();
  setTimeout(refresh, every);
})();
