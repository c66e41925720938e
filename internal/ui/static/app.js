// Delta CI's web UI: live parts of pages over Server-Sent Events, and the
// job log's window (paging, tail, folding). Part of Delta CI, under the
// project's licence; no other code is bundled.
"use strict";
(function () {
  var MAX_WINDOW = 6 << 20; // bytes of log the page holds at most

  function live() {
    var el = document.getElementById("live");
    if (!el || !window.EventSource) return;
    var es = new EventSource(location.pathname + location.search);
    es.addEventListener("live", function (e) {
      // Compared as the browser writes both, so that a page that did not
      // change is left alone (focus, and what a click is on).
      var t = document.createElement("template");
      t.innerHTML = JSON.parse(e.data).html;
      if (t.innerHTML === el.innerHTML) return;
      el.replaceChildren(t.content);
      document.body.setAttribute("data-updated", String(Date.now()));
    });
    es.addEventListener("failed", function () { es.close(); });
  }

  function num(el, k) { return parseInt(el.getAttribute("data-" + k), 10); }
  function set(el, k, v) { el.setAttribute("data-" + k, String(v)); }

  // Headers fold the lines after them: a group up to its ::endgroup::, a
  // section up to the next header.
  function foldRange(h) {
    var out = [], group = h.classList.contains("hg");
    for (var n = h.nextElementSibling; n; n = n.nextElementSibling) {
      if (n.classList.contains("h")) break;
      if (group && n.classList.contains("he")) { out.push(n); break; }
      out.push(n);
    }
    return out;
  }
  function fold(h, closed) {
    var b = h.querySelector(".fold");
    if (b) b.setAttribute("aria-expanded", closed ? "false" : "true");
    foldRange(h).forEach(function (n) { n.hidden = closed; });
  }
  function foldAll(log) {
    var hs = log.querySelectorAll(".l.h");
    for (var i = 0; i < hs.length - 1; i++) {
      if (!hs[i].classList.contains("ho")) fold(hs[i], true);
    }
  }

  function logView() {
    var log = document.getElementById("log");
    if (!log) return;
    var earlier = document.getElementById("log-earlier");
    var later = document.getElementById("log-later");
    var size = document.getElementById("log-size");
    var tail = null;
    log.addEventListener("click", function (e) {
      var b = e.target.closest(".fold");
      if (!b) return;
      fold(b.closest(".l"), b.getAttribute("aria-expanded") === "true");
    });
    var times = document.getElementById("log-times");
    if (times) times.addEventListener("change", function () { log.classList.toggle("show-times", times.checked); });

    // Drop lines from one end, in one removal, so that the page never
    // holds more than MAX_WINDOW bytes of the log.
    function trim(fromTop) {
      var start = num(log, "start"), end = num(log, "end");
      if (end - start > MAX_WINDOW && log.children.length > 1) {
        var kids = log.children, r = document.createRange();
        if (fromTop) {
          var i = 0;
          while (i < kids.length - 1 && end - parseInt(kids[i + 1].id.slice(1), 10) >= MAX_WINDOW) i++;
          start = parseInt(kids[i + 1].id.slice(1), 10);
          r.setStartBefore(kids[0]); r.setEndAfter(kids[i]);
        } else {
          var j = kids.length - 1;
          while (j > 1 && parseInt(kids[j - 1].id.slice(1), 10) - start >= MAX_WINDOW) j--;
          end = parseInt(kids[j].id.slice(1), 10);
          r.setStartBefore(kids[j]); r.setEndAfter(kids[kids.length - 1]);
        }
        r.deleteContents();
      }
      set(log, "start", start); set(log, "end", end);
      if (earlier) earlier.hidden = start === 0;
      if (later && end < num(log, "length")) {
        later.hidden = false;
        if (tail) { tail.close(); tail = null; }
      }
    }
    function page(dir) {
      var url = log.getAttribute("data-page") + (dir < 0 ? "&before=" + num(log, "start") : "&after=" + num(log, "end"));
      fetch(url, { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) throw new Error(r.status);
        var s = parseInt(r.headers.get("X-Log-Start"), 10), e = parseInt(r.headers.get("X-Log-End"), 10);
        return r.text().then(function (html) {
          if (dir < 0) {
            var h = log.scrollHeight;
            log.insertAdjacentHTML("afterbegin", html);
            log.scrollTop += log.scrollHeight - h;
            set(log, "start", s);
            trim(false);
          } else {
            log.insertAdjacentHTML("beforeend", html);
            set(log, "end", e);
            trim(true);
            if (later) later.hidden = e >= num(log, "length");
          }
          log.dispatchEvent(new CustomEvent("log:paged"));
        });
      }).catch(function (err) {
        log.setAttribute("data-error", String(err));
        log.dispatchEvent(new CustomEvent("log:paged"));
      });
    }
    if (earlier) earlier.addEventListener("click", function () { page(-1); });
    if (later) later.addEventListener("click", function () { page(1); });

    foldAll(log);
    var target = location.hash && document.getElementById(location.hash.slice(1));
    if (target) target.scrollIntoView();
    else if (!log.hasAttribute("data-start") || num(log, "start") > 0 || log.hasAttribute("data-live-tail")) log.scrollTop = log.scrollHeight;

    if (log.hasAttribute("data-live-tail") && window.EventSource) {
      tail = new EventSource(log.getAttribute("data-tail") + "&offset=" + num(log, "end"));
      tail.addEventListener("lines", function (e) {
        var d = JSON.parse(e.data);
        var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        log.insertAdjacentHTML("beforeend", d.html);
        set(log, "end", d.next);
        if (d.next > num(log, "length")) set(log, "length", d.next);
        if (size) size.textContent = num(log, "length") + " bytes";
        trim(true);
        if (atBottom) log.scrollTop = log.scrollHeight;
      });
      tail.addEventListener("end", function () {
        tail.close(); tail = null;
        log.setAttribute("data-ended", "1");
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () { live(); logView(); });
})();
