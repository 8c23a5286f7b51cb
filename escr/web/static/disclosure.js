// The redaction tool's drawing, on top of plain forms that work without it: drag on a page with
// the mouse (or a finger) to fill the "Redact an area" edges; or focus the page and use the arrow
// keys to move a box (Shift + arrows to resize it) and Enter to redact it. A saved area is moved
// the same way: drag it, or press N on the page until it is selected, then the arrows; that fills
// its "Move this area" form, and Enter sends it (Escape goes back to drawing a new box). The
// server checks everything again; this only fills in four numbers.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  function round(v) { return Math.round(Math.max(0, Math.min(100, v)) * 10) / 10; }

  function edges(form) {
    return ["x0", "y0", "x1", "y1"].map(function (n) { return form.querySelector('input[name="' + n + '"]'); });
  }

  function setup(sheet) {
    var page = sheet.getAttribute("data-page");
    var form = document.querySelector('form.draw[data-page="' + page + '"]');
    if (!form) { return; }
    var svg = sheet.querySelector("svg.overlay");
    var inputs = edges(form);
    var rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("class", "drawing");
    var box = null;  // the new box, [x0, y0, x1, y1] in percent
    var start = null;
    var grab = null;  // where a saved area was taken hold of, and its box then
    // The saved areas of this page: each one's box on the page and its "Move this area" form.
    var saved = [];
    Array.prototype.forEach.call(document.querySelectorAll('form.move[data-page="' + page + '"]'), function (f) {
      var shape = svg.querySelector('rect[data-redaction="' + f.getAttribute("data-redaction") + '"]');
      if (shape) { saved.push({form: f, inputs: edges(f), rect: shape}); }
    });
    var selected = null;

    sheet.setAttribute("tabindex", "0");
    sheet.setAttribute("role", "application");
    sheet.setAttribute("aria-label", "Page " + page + ": drag, or use the arrow keys, to mark an area to redact; " +
      "Enter redacts it. Drag a saved area, or press N to select one, to move it; Escape stops.");

    function boxOf(item) { return item.inputs.map(function (i) { return parseFloat(i.value); }); }

    function place(shape, b) {
      shape.setAttribute("x", b[0] * 10);
      shape.setAttribute("y", b[1] * 10);
      shape.setAttribute("width", Math.max(0, b[2] - b[0]) * 10);
      shape.setAttribute("height", Math.max(0, b[3] - b[1]) * 10);
    }

    function show() {
      if (selected) {
        var b = boxOf(selected);
        place(selected.rect, b);
        return;
      }
      if (!box) { return; }
      if (!rect.parentNode) { svg.appendChild(rect); }
      place(rect, box);
      inputs.forEach(function (input, i) { input.value = round(box[i]); });
    }

    function select(item) {
      if (selected) { selected.rect.classList.remove("selected"); }
      selected = item;
      if (item) {
        item.rect.classList.add("selected");
        var details = item.form.closest("details");
        if (details) { details.open = true; }
      }
    }

    function setBox(item, b) {
      item.inputs.forEach(function (input, i) { input.value = round(b[i]); });
      show();
    }

    function shift(b, dx, dy) {
      var w = b[2] - b[0], h = b[3] - b[1];
      var x = Math.max(0, Math.min(100 - w, b[0] + dx)), y = Math.max(0, Math.min(100 - h, b[1] + dy));
      return [x, y, x + w, y + h];
    }

    function at(event) {
      var r = sheet.getBoundingClientRect();
      return [(event.clientX - r.left) / r.width * 100, (event.clientY - r.top) / r.height * 100];
    }

    function under(p) {  // the smallest saved area under a point
      var best = null, size = Infinity;
      saved.forEach(function (item) {
        var b = boxOf(item);
        var s = (b[2] - b[0]) * (b[3] - b[1]);
        if (p[0] >= b[0] && p[0] <= b[2] && p[1] >= b[1] && p[1] <= b[3] && s < size) { best = item; size = s; }
      });
      return best;
    }

    sheet.addEventListener("pointerdown", function (event) {
      var p = at(event);
      var item = under(p);
      sheet.setPointerCapture(event.pointerId);
      event.preventDefault();
      if (item) {
        select(item);
        grab = {from: p, box: boxOf(item)};
        return;
      }
      select(null);
      start = p;
      box = [start[0], start[1], start[0], start[1]];
      show();
    });
    sheet.addEventListener("pointermove", function (event) {
      var p = at(event);
      if (grab && selected) {
        setBox(selected, shift(grab.box, p[0] - grab.from[0], p[1] - grab.from[1]));
        return;
      }
      if (!start) { return; }
      box = [Math.min(start[0], p[0]), Math.min(start[1], p[1]), Math.max(start[0], p[0]), Math.max(start[1], p[1])];
      show();
    });
    sheet.addEventListener("pointerup", function () { start = null; grab = null; });

    sheet.addEventListener("keydown", function (event) {
      var step = 1;
      var moves = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step]};
      if (event.key === "Enter" && (box || selected)) {
        event.preventDefault();
        var target = selected ? selected.form : form;
        target.requestSubmit ? target.requestSubmit() : target.submit();
        return;
      }
      if ((event.key === "n" || event.key === "N") && saved.length) {
        event.preventDefault();
        select(saved[(saved.indexOf(selected) + 1) % saved.length]);
        return;
      }
      if (event.key === "Escape" && selected) {
        event.preventDefault();
        select(null);
        return;
      }
      var m = moves[event.key];
      if (!m) { return; }
      event.preventDefault();
      var b = selected ? boxOf(selected) : (box || [10, 10, 30, 14]);
      if (event.shiftKey) {
        b[2] = Math.min(100, Math.max(b[0] + 0.5, b[2] + m[0]));
        b[3] = Math.min(100, Math.max(b[1] + 0.5, b[3] + m[1]));
      } else {
        b = shift(b, m[0], m[1]);
      }
      if (selected) { setBox(selected, b); } else { box = b; show(); }
    });

    inputs.forEach(function (input) {
      input.addEventListener("input", function () {
        var v = inputs.map(function (i) { return parseFloat(i.value); });
        if (v.every(function (n) { return !isNaN(n); })) { select(null); box = v; show(); }
      });
    });
    saved.forEach(function (item) {
      item.inputs.forEach(function (input) {
        input.addEventListener("input", function () {
          if (boxOf(item).every(function (n) { return !isNaN(n); })) { select(item); show(); }
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll(".sheet[data-page]"), setup);
  });
})();
