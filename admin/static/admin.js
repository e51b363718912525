// promopool admin: confirmations, the streamed file upload with its progress bar, and
// live mailing counts. Everything else works without JavaScript.
"use strict";

document.addEventListener("submit", function (e) {
  var msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) e.preventDefault();
}, true);

document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("file-upload");
  if (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var file = document.getElementById("file").files[0];
      var status = document.getElementById("upload-status");
      var bar = document.getElementById("upload-progress");
      var out = document.getElementById("upload-result");
      if (!file) { status.textContent = "Choose a file first."; return; }
      var url = form.getAttribute("data-url") + "?filename=" + encodeURIComponent(file.name);
      var exp = document.getElementById("expires-at").value;
      if (exp) url += "&expires_at=" + encodeURIComponent(exp);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("X-CSRF-Token", form.getAttribute("data-csrf"));
      xhr.setRequestHeader("Content-Type", file.type || "text/plain");
      bar.hidden = false; bar.value = 0;
      form.querySelector("button").disabled = true;
      xhr.upload.onprogress = function (ev) {
        if (!ev.lengthComputable) return;
        bar.value = Math.round(ev.loaded * 100 / ev.total);
        status.textContent = ev.loaded === ev.total ? "Sent; storing the codes…" : bar.value + "% sent";
      };
      xhr.onload = function () {
        form.querySelector("button").disabled = false;
        out.innerHTML = xhr.responseText; // HTML drawn by the server's template
        status.textContent = xhr.status === 201 ? "Done. Reload the page to see the new counts and history." : "Not stored.";
        bar.value = 100;
      };
      xhr.onerror = function () {
        form.querySelector("button").disabled = false;
        status.textContent = "The upload broke off; nothing was stored. Try again.";
      };
      xhr.send(file);
    });
  }

  // Segment builder: show the fields of each condition's kind, and one unused row.
  var conds = document.querySelectorAll("fieldset.condition");
  if (conds.length) {
    var layout = function () {
      var shown = false;
      conds.forEach(function (fs) {
        var kind = fs.querySelector("select[name^=k]").value;
        fs.setAttribute("data-kind", kind);
        fs.classList.toggle("later", kind === "" && shown);
        if (kind === "") shown = true;
      });
    };
    conds.forEach(function (fs) { fs.querySelector("select[name^=k]").addEventListener("change", layout); });
    layout();
  }

  var live = document.querySelector("[data-poll]");
  if (live) {
    var started = live.getAttribute("data-status");
    var tick = function () {
      fetch(live.getAttribute("data-poll"), { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          if (!d) return;
          var p = d.progress || {};
          live.querySelectorAll("[data-field]").forEach(function (el) {
            var v = p[el.getAttribute("data-field")];
            if (v !== undefined) el.textContent = Number(v).toLocaleString("en-US").replace(/,/g, "\u202f");
          });
          var bar = document.getElementById("mailing-bar");
          bar.max = p.recipients || 1; bar.value = p.sent || 0;
          var reason = document.getElementById("pause-reason");
          reason.textContent = d.pause_reason || ""; reason.hidden = !d.pause_reason;
          if (d.status !== started) { window.location.reload(); return; }
          setTimeout(tick, 1000);
        })
        .catch(function () { setTimeout(tick, 3000); });
    };
    setTimeout(tick, 1000);
  }
});
