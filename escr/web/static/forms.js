// Bad input loses nothing: when a form is refused (a date not understood, a reason too short, a
// move no longer possible), the server sends the person back to the page they were on with the
// reason at the top. Here, what they typed is kept in this tab's sessionStorage as they submit,
// and put back into the same form when the refusal comes back; it is removed on the next page
// load either way. Passwords and the CSRF token are never kept. Without JavaScript the reason
// still shows on the form's own page.
(function () {
  "use strict";
  var KEY = "escr-form";
  var store = window.sessionStorage;
  if (!store) { return; }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || (form.method || "").toLowerCase() !== "post") { return; }
    var kept = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.type === "password" || el.type === "hidden" || el.type === "file" || el.name === "csrf_token") { return; }
      if ((el.type === "checkbox" || el.type === "radio")) {
        if (el.checked) { (kept[el.name] = kept[el.name] || []).push(el.value); }
        return;
      }
      if (el.tagName === "SELECT" && el.multiple) {
        kept[el.name] = Array.prototype.filter.call(el.options, function (o) { return o.selected; }).map(function (o) { return o.value; });
        return;
      }
      kept[el.name] = el.value;
    });
    try { store.setItem(KEY, JSON.stringify({action: form.getAttribute("action") || "", fields: kept})); } catch (e) { /* full: nothing kept */ }
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    var raw = store.getItem(KEY);
    store.removeItem(KEY);
    var refused = document.querySelector(".notice.error[data-form]");
    if (!raw || !refused) { return; }
    var saved;
    try { saved = JSON.parse(raw); } catch (e) { return; }
    if (saved.action !== refused.getAttribute("data-form")) { return; }
    var form = Array.prototype.filter.call(document.forms, function (f) { return f.getAttribute("action") === saved.action; })[0];
    if (!form) { return; }
    Object.keys(saved.fields).forEach(function (name) {
      var value = saved.fields[name];
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name !== name) { return; }
        if (el.type === "checkbox" || el.type === "radio") { el.checked = value.indexOf(el.value) >= 0; }
        else if (el.tagName === "SELECT" && el.multiple) {
          Array.prototype.forEach.call(el.options, function (o) { o.selected = value.indexOf(o.value) >= 0; });
        } else { el.value = value; }
      });
    });
    var details = form.closest("details");
    if (details) { details.open = true; }
    var first = form.querySelector("input:not([type=hidden]), select, textarea");
    if (first) { first.focus(); }
  });
}());
