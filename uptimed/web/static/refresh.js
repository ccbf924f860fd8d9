// The status page reloads itself every minute, unless the visitor pauses it (WCAG 2.2.1: a
// time limit the user can turn off). Without JavaScript the page's <noscript> refresh does it.
"use strict";
(() => {
  const KEY = "uptimed-status-refresh";
  const button = document.getElementById("refresh-toggle");
  const note = document.getElementById("refresh-note");
  const seconds = Number(button.dataset.seconds) || 60;
  let timer = null;
  const paused = () => sessionStorage.getItem(KEY) === "paused";
  const show = () => {
    button.textContent = paused() ? "Resume auto-refresh" : "Pause auto-refresh";
    button.setAttribute("aria-pressed", String(paused()));
    note.textContent = paused()
      ? "Auto-refresh is paused."
      : "This page refreshes every minute.";
  };
  const arm = () => {
    clearTimeout(timer);
    if (!paused()) timer = setTimeout(() => location.reload(), seconds * 1000);
  };
  button.addEventListener("click", () => {
    if (paused()) sessionStorage.removeItem(KEY);
    else sessionStorage.setItem(KEY, "paused");
    show();
    arm();
  });
  button.hidden = false;
  show();
  arm();
})();
