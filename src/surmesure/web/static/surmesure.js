/* surmesure web script: fills the page's placements for its visitor, reports views and clicks.

   <div data-surmesure-placement="home_banner">the neutral default</div>
   <script async src="https://SERVER/web/surmesure.js" data-surmesure-key="PUBLIC WEB KEY"
           data-surmesure-user="SIGNED USER (logged in only)" data-surmesure-budget="300"></script>

   One call decides every placement of the page. A placement keeps its own content (its
   neutral default) when the call fails or answers after its budget (data-surmesure-budget, in
   ms, on the script tag or the placement; 300 by default), or when nothing is decided for it.
   Each placement says how it ended in data-surmesure-state: "filled" or "default" (and why in
   data-surmesure-reason: "late", "error" or "empty"). The anonymous id lives in the shop's
   own cookie sm_aid. Nothing here throws into the page. */
(function () {
  "use strict";
  var COOKIE = "sm_aid";
  var DEFAULT_BUDGET = 300;
  /* SVG's animations can set a link's href after the check (to javascript:), and a template's
     inert content is not walked: all are taken out whole. */
  var DROPPED = { SCRIPT: 1, IFRAME: 1, OBJECT: 1, EMBED: 1, LINK: 1, META: 1, STYLE: 1, BASE: 1, FORM: 1,
                  ANIMATE: 1, ANIMATEMOTION: 1, ANIMATETRANSFORM: 1, SET: 1, TEMPLATE: 1, NOSCRIPT: 1 };
  var URL_ATTRIBUTES = { href: 1, src: 1, action: 1, formaction: 1, "xlink:href": 1, srcset: 1 };

  var tag = document.currentScript || document.querySelector("script[data-surmesure-key]");
  if (!tag || !window.fetch) return;
  var key = tag.getAttribute("data-surmesure-key");
  var user = tag.getAttribute("data-surmesure-user") || undefined;
  var base = tag.src.replace(/\/web\/surmesure\.js(\?.*)?$/, "");
  var pageBudget = number(tag.getAttribute("data-surmesure-budget"), DEFAULT_BUDGET);
  var aid;
  var queue = [];
  var flushing = null;

  function number(text, fallback) {
    var n = parseInt(text, 10);
    return n >= 0 ? n : fallback;
  }

  function readCookie() {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf(COOKIE + "=") !== 0) continue;
      /* a value the shop's other pages or subdomains broke is no id: the server gives a new one */
      try { return decodeURIComponent(parts[i].slice(COOKIE.length + 1)); } catch (e) { return undefined; }
    }
    return undefined;
  }

  function keepCookie(value, maxAge) {
    document.cookie = COOKIE + "=" + encodeURIComponent(value) + "; Max-Age=" + maxAge +
      "; Path=/; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
  }

  function mark(el, state, reason) {
    el.setAttribute("data-surmesure-state", state);
    if (reason) el.setAttribute("data-surmesure-reason", reason);
  }

  /* The answer's HTML is the template's own text with every value escaped by the server's
     sandbox; parsed inert, then anything that could run or leave the page is taken out. */
  function safe(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html;
    var walker = document.createTreeWalker(holder.content, NodeFilter.SHOW_ELEMENT);
    var dropped = [];
    for (var node = walker.nextNode(); node; node = walker.nextNode()) {
      if (DROPPED[node.tagName.toUpperCase()]) { dropped.push(node); continue; }
      for (var i = node.attributes.length - 1; i >= 0; i--) {
        var name = node.attributes[i].name.toLowerCase();
        var value = node.attributes[i].value.replace(/[\s\u0000-\u001f]/g, "").toLowerCase();
        if (name.indexOf("on") === 0 || (URL_ATTRIBUTES[name] && /^(javascript|data|vbscript):/.test(value))) {
          node.removeAttribute(node.attributes[i].name);
        }
      }
    }
    dropped.forEach(function (n) { n.parentNode.removeChild(n); });
    return holder.content;
  }

  function element(name, className, content) {
    var el = document.createElement(name);
    if (className) el.className = className;
    if (content) el.appendChild(content);
    return el;
  }

  function fill(el, shown) {
    var parts = document.createDocumentFragment();
    parts.appendChild(element("div", "surmesure-content", safe(shown.html)));
    if (shown.offers.length) {
      var offers = element("ul", "surmesure-offers");
      shown.offers.forEach(function (offer) {
        var item = element("li", "surmesure-offer");
        item.setAttribute("data-surmesure-offer", offer.content_id);
        item.appendChild(element("strong", "", safe(offer.title)));
        item.appendChild(document.createTextNode(" "));
        item.appendChild(element("span", "", safe(offer.text)));
        offers.appendChild(item);
      });
      parts.appendChild(offers);
    }
    if (shown.products.length) {
      var products = element("ul", "surmesure-products");
      shown.products.forEach(function (product) {
        var item = element("li", "surmesure-product");
        item.setAttribute("data-surmesure-product", product.product_code);
        item.textContent = product.name || product.product_code;
        products.appendChild(item);
      });
      parts.appendChild(products);
    }
    el.replaceChildren(parts);
    el.setAttribute("data-surmesure-decision", shown.decision_id);
    mark(el, "filled");
    try { performance.mark("surmesure:filled:" + shown.placement); } catch (e) { /* no timing */ }
    watch(el, shown);
  }

  function watch(el, shown) {
    var event = { placement: shown.placement, decision_id: shown.decision_id, content_id: shown.content_id || undefined };
    var viewed = function () { report(Object.assign({ type: "view" }, event)); };
    if (window.IntersectionObserver) {
      var seen = new IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.isIntersecting; })) { seen.disconnect(); viewed(); }
      }, { threshold: 0.5 });
      seen.observe(el);
    } else {
      viewed();
    }
    el.addEventListener("click", function (e) {
      var link = e.target && e.target.closest ? e.target.closest("a[href]") : null;
      if (link && el.contains(link)) {
        report(Object.assign({ type: "click", url: link.href.slice(0, 2048) }, event));
        flush();
      }
    });
  }

  function report(event) {
    queue.push(event);
    if (!flushing) flushing = setTimeout(flush, 50);
  }

  function flush() {
    clearTimeout(flushing);
    flushing = null;
    if (!queue.length || !aid) return;
    var body = JSON.stringify({ key: key, aid: aid, user: user, events: queue.splice(0, 20) });
    var url = base + "/v1/web/events";
    try {
      if (!(navigator.sendBeacon && navigator.sendBeacon(url, body))) {
        fetch(url, { method: "POST", body: body, keepalive: true, credentials: "omit",
                     headers: { "Content-Type": "text/plain" } }).catch(function () {});
      }
    } catch (e) { /* a lost report never breaks the page */ }
    if (queue.length) flush();
  }

  function run() {
    var found = document.querySelectorAll("[data-surmesure-placement]");
    var places = {};
    for (var i = 0; i < found.length; i++) {
      var name = found[i].getAttribute("data-surmesure-placement");
      (places[name] = places[name] || []).push(found[i]);
    }
    var names = Object.keys(places).slice(0, 10);
    if (!names.length) return;
    var started = performance.now();
    var budgetOf = function (el) { return number(el.getAttribute("data-surmesure-budget"), pageBudget); };
    var fallBack = function (reason) {
      names.forEach(function (n) {
        places[n].forEach(function (el) {
          if (!el.hasAttribute("data-surmesure-state")) mark(el, "default", reason);
        });
      });
    };
    var longest = Math.max.apply(null, names.map(function (n) { return Math.max.apply(null, places[n].map(budgetOf)); }));
    var late = setTimeout(function () { fallBack("late"); }, longest);
    names.forEach(function (n) {
      places[n].forEach(function (el) {
        var budget = budgetOf(el);
        if (budget < longest) setTimeout(function () { if (!el.hasAttribute("data-surmesure-state")) mark(el, "default", "late"); }, budget);
      });
    });
    var context = { page: location.pathname.slice(0, 2048) };
    if (document.documentElement.lang) context.locale = document.documentElement.lang;
    try { context.time_zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { /* none */ }
    var body = JSON.stringify({ key: key, aid: readCookie(), user: user, placements: names, context: context });
    fetch(base + "/v1/web/decide", { method: "POST", body: body, credentials: "omit",
                                     headers: { "Content-Type": "text/plain" } })
      .then(function (response) {
        if (!response.ok) throw new Error("decide " + response.status);
        return response.json();
      })
      .then(function (answer) {
        aid = answer.aid;
        keepCookie(answer.aid, answer.max_age);
        var elapsed = performance.now() - started;
        answer.placements.forEach(function (shown) {
          (places[shown.placement] || []).forEach(function (el) {
            if (el.hasAttribute("data-surmesure-state")) return;
            if (elapsed > budgetOf(el)) mark(el, "default", "late");
            else if (shown.html == null) mark(el, "default", "empty");
            else fill(el, shown);
          });
        });
        clearTimeout(late);
        fallBack("empty");
      })
      .catch(function () { clearTimeout(late); fallBack("error"); });
    addEventListener("pagehide", flush);
    document.addEventListener("visibilitychange", function () { if (document.visibilityState === "hidden") flush(); });
  }

  try {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () {
      try { run(); } catch (e) { /* the page keeps its defaults */ }
    });
    else run();
  } catch (e) { /* the page keeps its defaults */ }
})();
