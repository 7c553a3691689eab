(function () {
  function put(msg) {
    var box = document.getElementById("errors");
    if (box) box.textContent += msg + "\n"; else (window.__early = window.__early || []).push(msg);
  }
  window.addEventListener("error", function (e) { put("error: " + (e.message || e) + (e.lineno ? " (line " + e.lineno + ")" : "")); });
  window.addEventListener("unhandledrejection", function (e) { put("unhandled rejection: " + e.reason); });
  var orig = console.error;
  console.error = function () { put("console.error: " + Array.prototype.join.call(arguments, " ")); return orig.apply(console, arguments); };
  document.addEventListener("DOMContentLoaded", function () { (window.__early || []).forEach(put); });
})();
