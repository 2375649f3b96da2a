// Small progressive enhancements; every page works without JavaScript.
(function () {
  "use strict";
  // Live panels: <div data-live-url=... data-live-seconds=...> is replaced by a fresh copy of its content.
  document.querySelectorAll("[data-live-url]").forEach(function (box) {
    var seconds = Math.max(1, parseInt(box.getAttribute("data-live-seconds"), 10) || 15);
    setInterval(function () {
      fetch(box.getAttribute("data-live-url"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { if (r.redirected || !r.ok) { throw new Error("not signed in"); } return r.text(); })
        .then(function (html) { box.innerHTML = html; })
        .catch(function () { /* keep what is shown; the next tick tries again */ });
    }, seconds * 1000);
  });
  // Forms that destroy something ask first.
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });
})();
