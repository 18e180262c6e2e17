// Runs before the page paints: the chosen theme (localStorage), else the system's.
(function () {
  var chosen = null;
  try { chosen = localStorage.getItem("iii-console-theme"); } catch (e) { /* private mode */ }
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  var theme = chosen === "light" || chosen === "dark" ? chosen : (dark ? "dark" : "light");
  document.documentElement.dataset.theme = theme;
  document.documentElement.dataset.themeChoice = chosen || "system";
})();
