// The console's few behaviours: theme switch, live-stream indicator, pausing the log tail,
// formatting JSON in a textarea, Ctrl+Enter to submit. htmx does everything else.
(function () {
  "use strict";
  var KEY = "iii-console-theme";
  var ORDER = ["system", "light", "dark"];

  function applyTheme(choice) {
    var dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
    var theme = choice === "system" ? (dark ? "dark" : "light") : choice;
    document.documentElement.dataset.theme = theme;
    document.documentElement.dataset.themeChoice = choice;
    var name = document.getElementById("theme-name");
    if (name) name.textContent = choice;
  }

  function setLive(on) {
    var dot = document.getElementById("live-state");
    if (dot) dot.classList.toggle("on", on);
  }

  document.addEventListener("DOMContentLoaded", function () {
    applyTheme(document.documentElement.dataset.themeChoice || "system");
    var toggle = document.getElementById("theme-toggle");
    if (toggle) {
      toggle.addEventListener("click", function () {
        var current = document.documentElement.dataset.themeChoice || "system";
        var next = ORDER[(ORDER.indexOf(current) + 1) % ORDER.length];
        try {
          if (next === "system") localStorage.removeItem(KEY); else localStorage.setItem(KEY, next);
        } catch (e) { /* private mode: this page only */ }
        applyTheme(next);
      });
    }
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () {
      applyTheme(document.documentElement.dataset.themeChoice || "system");
    });
  });

  document.addEventListener("htmx:sseOpen", function () { setLive(true); });
  document.addEventListener("htmx:sseError", function () { setLive(false); });
  document.addEventListener("htmx:sseClose", function () { setLive(false); });

  // A paused live region (the log tail with "live tail" off) skips its refreshes.
  document.addEventListener("htmx:confirm", function (event) {
    var elt = event.detail.elt;
    var tail = document.getElementById("tail");
    if (elt && elt.hasAttribute("data-pausable") && tail && !tail.checked &&
        event.detail.triggeringEvent && event.detail.triggeringEvent.type.indexOf("sse:") === 0) {
      event.preventDefault();
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-format]");
    if (!button) return;
    var area = document.querySelector(button.getAttribute("data-format"));
    if (!area) return;
    try {
      area.value = JSON.stringify(JSON.parse(area.value), null, 2);
      area.setCustomValidity("");
    } catch (e) {
      area.setCustomValidity("not JSON: " + e.message);
      area.reportValidity();
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    var area = event.target.closest("textarea");
    var form = area && area.form;
    if (form) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
})();
