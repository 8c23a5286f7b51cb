// The intake home: "Being processed now" is fetched again every few seconds and swapped in, so
// stages and pages done move without reloading the page. Without JavaScript the page refreshes
// itself (a meta refresh inside <noscript>) and the "Refresh now" link stays.
(function () {
  "use strict";
  var box = document.getElementById("processing");
  if (!box || !window.fetch) { return; }
  document.documentElement.className += " js";
  var every = (parseInt(box.getAttribute("data-every"), 10) || 5) * 1000;
  function poll() {
    if (document.hidden) { window.setTimeout(poll, every); return; }
    window.fetch(box.getAttribute("data-src"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        // Signed out (sent to the sign-in page) or refused: stop, the page's own link still works.
        if (!r.ok || r.redirected) { throw new Error("stop"); }
        return r.text().then(function (html) { box.innerHTML = html; window.setTimeout(poll, every); });
      })
      .catch(function (e) { if (e.message !== "stop") { window.setTimeout(poll, every * 2); } });
  }
  window.setTimeout(poll, every);
}());
