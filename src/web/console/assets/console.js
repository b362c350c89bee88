// smsgate console: the one script of every page (no third-party code). It drives the send
// page (recipients preview, live quote, chunked submission with a progress bar) and the live
// state changes of the messages pages (server-sent events). Every POST carries the page's
// CSRF token in x-csrf-token; every word comes from the page's #i18n block.
"use strict";
(function () {
  var csrf = document.body.getAttribute("data-csrf") || "";
  var words = {};
  try { words = JSON.parse(document.getElementById("i18n").textContent); } catch (e) { words = {}; }
  function w(k) { return words[k] || k; }
  function $(id) { return document.getElementById(id); }

  function post(path, body, contentType) {
    var headers = { "x-csrf-token": csrf };
    headers["content-type"] = contentType || "application/json";
    return fetch(path, {
      method: "POST", headers: headers, credentials: "same-origin",
      body: contentType ? body : JSON.stringify(body)
    }).then(function (r) {
      return r.text().then(function (t) {
        var v = null;
        try { v = JSON.parse(t); } catch (e) { v = null; }
        if (!r.ok || v === null) {
          var msg = v && v.error ? v.error.message : ("HTTP " + r.status);
          throw new Error(msg);
        }
        return v;
      });
    });
  }

  // ---- send page ----
  var page = $("send-page");
  if (page) {
    var chunk = parseInt(page.getAttribute("data-chunk"), 10) || 500;
    var preview = null; // the last check's rows; null: not checked since the numbers changed
    var quoteTimer = null;
    var quoteSeq = 0;

    function validRows() {
      return preview ? preview.rows.filter(function (r) { return r.status === "valid"; }) : [];
    }
    function showError(msg) {
      var e = $("send-error");
      e.textContent = msg || "";
      e.hidden = !msg;
    }
    function refreshSubmit() {
      var ok = preview !== null && validRows().length > 0;
      $("submit").disabled = !ok;
      $("submit-hint").hidden = preview !== null;
    }
    function invalidate() {
      preview = null;
      $("preview").hidden = true;
      refreshSubmit();
    }
    function render(p) {
      preview = p;
      $("preview").hidden = false;
      $("preview-total").textContent = p.total;
      ["valid", "invalid", "duplicate", "opted_out", "blacklisted"].forEach(function (s) {
        $("preview-" + s).textContent = p.counts[s] || 0;
      });
      var body = $("preview-rows").tBodies[0];
      body.textContent = "";
      p.rows.filter(function (r) { return r.status !== "valid"; }).slice(0, 100).forEach(function (r) {
        var tr = document.createElement("tr");
        [r.input, w("st_" + r.status), r.reason || ""].forEach(function (v) {
          var td = document.createElement("td");
          td.textContent = v;
          tr.appendChild(td);
        });
        tr.className = "st-" + r.status;
        body.appendChild(tr);
      });
      refreshSubmit();
      quote();
    }
    function check() {
      showError("");
      var file = $("file").files[0];
      var request;
      if (file) {
        request = file.arrayBuffer().then(function (buf) {
          return post("/send/upload", buf, "application/octet-stream");
        });
      } else {
        request = post("/send/check", { typed: $("numbers").value });
      }
      $("check").disabled = true;
      request.then(render, function (e) { invalidate(); showError(e.message); })
        .then(function () { $("check").disabled = false; });
    }
    function quote() {
      var text = $("text").value;
      var seq = ++quoteSeq;
      if (!text) {
        ["count-chars", "count-parts", "count-cost", "count-total"].forEach(function (id) { $(id).textContent = "0"; });
        $("count-encoding").textContent = "-";
        $("text-as-sent").textContent = "";
        return;
      }
      var n = validRows().length || 1;
      post("/send/quote", { text: text, sender: $("sender").value, recipients: n }).then(function (q) {
        if (seq !== quoteSeq) { return; }
        $("count-chars").textContent = q.characters;
        $("count-parts").textContent = q.parts;
        $("count-encoding").textContent = q.encoding;
        $("count-cost").textContent = q.parts;
        $("count-total").textContent = q.cost;
        $("text-as-sent").textContent = q.text_as_sent;
        showError("");
      }, function (e) { if (seq === quoteSeq) { showError(e.message); } });
    }
    function submit() {
      showError("");
      var rows = validRows();
      var text = $("text").value;
      if (!rows.length) { showError(w("no_valid")); return; }
      // Rows of a file may carry their own text; the rest take the text field's.
      var groups = {};
      var order = [];
      for (var i = 0; i < rows.length; i++) {
        var t = rows[i].text || text;
        if (!t) { showError(w("no_text")); return; }
        if (!groups[t]) { groups[t] = []; order.push(t); }
        groups[t].push(rows[i].number || rows[i].input);
      }
      var jobs = [];
      order.forEach(function (t) {
        for (var j = 0; j < groups[t].length; j += chunk) {
          jobs.push({ to: groups[t].slice(j, j + chunk), text: t });
        }
      });
      var total = rows.length, done = 0, ids = [], refused = 0;
      var bar = $("progress");
      bar.hidden = false; bar.max = total; bar.value = 0;
      $("submit").disabled = true; $("check").disabled = true;
      $("progress-text").textContent = w("submitting") + " 0 / " + total;
      var common = { sender: $("sender").value, not_before: $("not-before").value, validity: $("validity").value };
      var chain = Promise.resolve();
      jobs.forEach(function (job) {
        chain = chain.then(function () {
          return post("/send/submit", { to: job.to, text: job.text, sender: common.sender,
            not_before: common.not_before, validity: common.validity }).then(function (a) {
            ids = ids.concat(a.ids || []);
            refused += (a.refused || []).length;
            done += job.to.length;
            bar.value = done;
            $("progress-text").textContent = w("submitting") + " " + done + " / " + total;
          });
        });
      });
      chain.then(function () { finish(ids, refused, null); },
                 function (e) { finish(ids, refused, e.message); });
    }
    function finish(ids, refused, error) {
      var r = $("send-result");
      r.textContent = "";
      r.hidden = false;
      var p = document.createElement("p");
      p.id = "send-summary";
      p.textContent = w("submitted") + " " + ids.length + (refused ? " · " + w("refused") + " " + refused : "");
      r.appendChild(p);
      if (ids.length) {
        var first = Math.min.apply(null, ids), last = Math.max.apply(null, ids);
        var a = document.createElement("a");
        a.id = "batch-link";
        a.href = "/messages?batch=" + first + "-" + last;
        a.textContent = w("view_messages") + " (" + w("batch") + " " + first + "-" + last + ")";
        r.appendChild(a);
      }
      if (error) { showError(w("send_failed") + ": " + error); }
      $("progress-text").textContent = w("submitted") + " " + ids.length;
      $("check").disabled = false;
      refreshSubmit();
    }

    $("numbers").addEventListener("input", invalidate);
    $("file").addEventListener("change", function () { invalidate(); if ($("file").files.length) { check(); } });
    $("check").addEventListener("click", check);
    $("submit").addEventListener("click", submit);
    $("text").addEventListener("input", function () {
      clearTimeout(quoteTimer);
      quoteTimer = setTimeout(quote, 250);
    });
    $("sender").addEventListener("change", quote);
  }

  // ---- live states (messages pages) ----
  var live = $("live");
  if (live && window.EventSource) {
    var ids = live.getAttribute("data-watch");
    var source = new EventSource("/messages/events?ids=" + encodeURIComponent(ids));
    source.addEventListener("state", function (ev) {
      var d;
      try { d = JSON.parse(ev.data); } catch (e) { return; }
      var cell = $("state-" + d.id);
      if (cell) {
        cell.textContent = d.label;
        cell.setAttribute("data-state", d.state);
        cell.className = "state s-" + d.state;
      }
      var when = $("delivered-" + d.id);
      if (when && d.delivered) { when.textContent = d.delivered; }
    });
    source.addEventListener("done", function () {
      source.close();
      live.classList.add("off");
    });
  }
})();
