// The page works without this script; it adds the placeholder chips, the
// live preview of reply texts and the dashboard's refresh.
"use strict";
(function () {
  var sample = document.getElementById("sample-names");
  function render(text) {
    var names = sample ? sample.dataset : {};
    // A bracketed part holding a placeholder is left out when one of its
    // placeholders has no value, as the bot renders it.
    text = text.replace(/\[([^\[\]]*\{[a-z_]+\}[^\[\]]*)\]/g, function (_, inner) {
      var empty = false;
      inner.replace(/\{([a-z_]+)\}/g, function (_, n) { if (!names[n]) { empty = true; } return ""; });
      return empty ? "" : inner;
    });
    return text.replace(/\{([a-z_]+)\}/g, function (m, n) { return n in names ? names[n] : m; }).trim();
  }
  document.querySelectorAll("textarea[data-preview]").forEach(function (ta) {
    var out = document.getElementById(ta.dataset.preview);
    var update = function () { if (out) { out.textContent = render(ta.value); } };
    ta.addEventListener("input", update);
    update();
  });
  document.querySelectorAll("button.chip").forEach(function (b) {
    b.addEventListener("click", function () {
      var ta = b.closest(".reply").querySelector("textarea");
      var s = ta.selectionStart, e = ta.selectionEnd, v = ta.value, ins = b.dataset.insert;
      ta.value = v.slice(0, s) + ins + v.slice(e);
      ta.focus();
      ta.selectionStart = ta.selectionEnd = s + ins.length;
      ta.dispatchEvent(new Event("input"));
    });
  });
  var live = document.getElementById("live");
  if (live && live.dataset.live) {
    var refresh = function () {
      fetch(live.dataset.live, { credentials: "same-origin" }).then(function (r) {
        if (r.ok) { return r.text(); }
        throw new Error(r.status);
      }).then(function (html) { live.innerHTML = html; }).catch(function () {});
    };
    setInterval(refresh, 2000);
  }
})();
