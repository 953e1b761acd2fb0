// Keyward progressive enhancement. Every page works without this file; with it, times are
// shown in the viewer's own time zone. (No inline scripts: the Content-Security-Policy forbids them.)
"use strict";

(function () {
  function localizeTimes(root) {
    var formatter = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        el.title = formatter.format(when);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
  });
})();
