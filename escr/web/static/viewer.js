/* The viewer with a keyboard: arrows turn the page, + and - zoom (in place), / finds.
   Everything here is also a link or a button on the page: without script nothing is lost. */
(function () {
  "use strict";
  var zooms = [100, 150, 200];
  var sheet = document.querySelector(".sheet");
  var keys = document.getElementById("keys");
  if (keys) { keys.hidden = false; }
  function go(name) {
    var el = document.querySelector('[data-go="' + name + '"]');
    if (el) { el.click(); return true; }
    return false;
  }
  function setZoom(z) {
    if (!sheet) { return; }
    zooms.forEach(function (each) { sheet.classList.remove("zoom-" + each); });
    sheet.classList.add("zoom-" + z);
    sheet.dataset.zoom = String(z);
    document.querySelectorAll('input[name="zoom"]').forEach(function (el) { el.value = String(z); });
    document.querySelectorAll("a[data-go]").forEach(function (a) {
      var url = new URL(a.href);
      if (z === 100) { url.searchParams.delete("zoom"); } else { url.searchParams.set("zoom", String(z)); }
      a.href = url.toString();
    });
    document.querySelectorAll('.zoom-nav [data-go]').forEach(function (el) {
      if (el.dataset.go === "zoom-" + z) { el.setAttribute("aria-current", "true"); } else { el.removeAttribute("aria-current"); }
    });
    if (window.location.pathname.endsWith("/view") && window.location.search.indexOf("page=") >= 0) {
      var here = new URL(window.location.href);
      if (z === 100) { here.searchParams.delete("zoom"); } else { here.searchParams.set("zoom", String(z)); }
      history.replaceState(null, "", here.toString());
    }
  }
  document.querySelectorAll(".zoom-nav [data-go]").forEach(function (el) {
    el.addEventListener("click", function (ev) {
      ev.preventDefault();
      setZoom(parseInt(el.dataset.go.slice(5), 10));
    });
  });
  document.addEventListener("keydown", function (ev) {
    var t = ev.target;
    if (ev.altKey || ev.ctrlKey || ev.metaKey) { return; }
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) { return; }
    var z = sheet ? parseInt(sheet.dataset.zoom || "100", 10) : 100;
    var i = zooms.indexOf(z);
    if (z > 100 && t && t.classList && t.classList.contains("sheet-frame")) { return; }  /* arrows scroll a zoomed page */
    if (ev.key === "ArrowRight" || ev.key === "PageDown") {
      if (go("next")) { ev.preventDefault(); }
    } else if (ev.key === "ArrowLeft" || ev.key === "PageUp") {
      if (go("prev")) { ev.preventDefault(); }
    } else if ((ev.key === "+" || ev.key === "=") && i < zooms.length - 1) {
      setZoom(zooms[i + 1]); ev.preventDefault();
    } else if (ev.key === "-" && i > 0) {
      setZoom(zooms[i - 1]); ev.preventDefault();
    } else if (ev.key === "/") {
      var find = document.getElementById("find-q");
      if (find) { find.focus(); ev.preventDefault(); }
    }
  });
}());
