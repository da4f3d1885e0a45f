// Reports what the film of a video page did, once each, to the page's own address:
// play, a quarter, half and three quarters of it played, and its end.
(function () {
  "use strict";
  var film = document.getElementById("film");
  if (!film) { return; }
  var target = film.getAttribute("data-events");
  var sent = {};
  function report(name) {
    if (sent[name]) { return; }
    sent[name] = true;
    fetch(target, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ event: name }),
      credentials: "omit",
      keepalive: true
    }).catch(function () { sent[name] = false; });
  }
  film.addEventListener("play", function () { report("play"); });
  film.addEventListener("timeupdate", function () {
    var length = film.duration;
    if (!length || !isFinite(length)) { return; }
    [25, 50, 75].forEach(function (share) {
      if (film.currentTime >= length * share / 100) { report(String(share)); }
    });
  });
  film.addEventListener("ended", function () {
    ["25", "50", "75", "complete"].forEach(report);
  });
}());
