// The redaction tool's drawing, on top of plain forms that work without it: drag on a page with
// the mouse (or a finger) to fill the "Redact an area" edges; or focus the page and use the arrow
// keys to move a box (Shift + arrows to resize it) and Enter to redact it. The server checks
// everything again; this only fills in four numbers.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  function round(v) { return Math.round(Math.max(0, Math.min(100, v)) * 10) / 10; }

  function setup(sheet) {
    var page = sheet.getAttribute("data-page");
    var form = document.querySelector('form.draw[data-page="' + page + '"]');
    if (!form) { return; }
    var svg = sheet.querySelector("svg.overlay");
    var inputs = ["x0", "y0", "x1", "y1"].map(function (n) { return form.querySelector('input[name="' + n + '"]'); });
    var rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("class", "drawing");
    var box = null;  // [x0, y0, x1, y1] in percent
    var start = null;

    sheet.setAttribute("tabindex", "0");
    sheet.setAttribute("role", "application");
    sheet.setAttribute("aria-label", "Page " + page + ": drag, or use the arrow keys, to mark an area to redact; Enter redacts it");

    function show() {
      if (!box) { return; }
      if (!rect.parentNode) { svg.appendChild(rect); }
      rect.setAttribute("x", box[0] * 10);
      rect.setAttribute("y", box[1] * 10);
      rect.setAttribute("width", Math.max(0, box[2] - box[0]) * 10);
      rect.setAttribute("height", Math.max(0, box[3] - box[1]) * 10);
      inputs.forEach(function (input, i) { input.value = round(box[i]); });
    }

    function at(event) {
      var r = sheet.getBoundingClientRect();
      return [(event.clientX - r.left) / r.width * 100, (event.clientY - r.top) / r.height * 100];
    }

    sheet.addEventListener("pointerdown", function (event) {
      start = at(event);
      box = [start[0], start[1], start[0], start[1]];
      sheet.setPointerCapture(event.pointerId);
      event.preventDefault();
      show();
    });
    sheet.addEventListener("pointermove", function (event) {
      if (!start) { return; }
      var p = at(event);
      box = [Math.min(start[0], p[0]), Math.min(start[1], p[1]), Math.max(start[0], p[0]), Math.max(start[1], p[1])];
      show();
    });
    sheet.addEventListener("pointerup", function () { start = null; });

    sheet.addEventListener("keydown", function (event) {
      var step = 1;
      var moves = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step]};
      if (event.key === "Enter" && box) {
        event.preventDefault();
        form.requestSubmit ? form.requestSubmit() : form.submit();
        return;
      }
      var m = moves[event.key];
      if (!m) { return; }
      event.preventDefault();
      if (!box) { box = [10, 10, 30, 14]; }
      if (event.shiftKey) {
        box[2] = Math.max(box[0] + 0.5, box[2] + m[0]);
        box[3] = Math.max(box[1] + 0.5, box[3] + m[1]);
      } else {
        var w = box[2] - box[0], h = box[3] - box[1];
        box[0] = Math.max(0, Math.min(100 - w, box[0] + m[0]));
        box[1] = Math.max(0, Math.min(100 - h, box[1] + m[1]));
        box[2] = box[0] + w;
        box[3] = box[1] + h;
      }
      show();
    });

    inputs.forEach(function (input) {
      input.addEventListener("input", function () {
        var v = inputs.map(function (i) { return parseFloat(i.value); });
        if (v.every(function (n) { return !isNaN(n); })) { box = v; show(); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll(".sheet[data-page]"), setup);
  });
})();
