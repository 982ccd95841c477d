// scimd console: copy buttons, and a question before actions that cannot be undone.
// Served from the console itself (the Content-Security-Policy allows no inline script).
"use strict";
document.addEventListener("click", function (e) {
  var copy = e.target.closest("[data-copy]");
  if (copy) {
    var source = document.getElementById(copy.getAttribute("data-copy"));
    if (!source) return;
    var text = source.textContent;
    var done = function () { copy.textContent = "Copied"; setTimeout(function () { copy.textContent = "Copy"; }, 2000); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(source); });
    } else {
      select(source);
    }
    return;
  }
  var confirmed = e.target.closest("[data-confirm]");
  if (confirmed && !window.confirm(confirmed.getAttribute("data-confirm"))) e.preventDefault();
});
// Without the clipboard (plain http on another host), the text is selected for Ctrl+C.
function select(node) {
  var range = document.createRange();
  range.selectNodeContents(node);
  var sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
}
