// payplane console — the little script of our own. No framework: navigation toggle, confirm
// prompts, live payment updates over the WebSocket, sign-out across tabs, the service worker.
// The page works without it; this only makes it live.
(function () {
  "use strict";
  var body = document.body;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // Navigation toggle on small screens.
  var toggle = document.querySelector(".nav-toggle");
  var nav = document.getElementById("nav");
  if (toggle && nav) {
    toggle.addEventListener("click", function () {
      var open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // Destructive buttons ask first.
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-confirm]");
    if (b && !window.confirm(b.getAttribute("data-confirm"))) e.preventDefault();
  });

  // Offline page: try again.
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("[data-retry]")) { e.preventDefault(); location.reload(); }
  });

  // Scheduled payments show their date field only when "Later" is chosen.
  var payForm = document.querySelector("[data-payment-form]");
  if (payForm) {
    var when = payForm.querySelector('[data-when="scheduled"]');
    var sync = function () {
      var checked = payForm.querySelector('input[name="type"]:checked');
      if (when) when.hidden = !(checked && checked.value === "scheduled");
    };
    payForm.addEventListener("change", sync);
    sync();
  }

  function toast(text) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var t = document.createElement("div");
    t.className = "toast";
    t.textContent = text;
    box.appendChild(t);
    setTimeout(function () { t.remove(); }, 5000);
  }

  // Sign-out across tabs: the page shown after signing out tells the others, which follow.
  var channel = "BroadcastChannel" in window ? new BroadcastChannel("payplane-session") : null;
  if (channel) {
    if (body.hasAttribute("data-signed-out")) channel.postMessage({ type: "signed-out" });
    channel.onmessage = function (e) {
      if (e.data && e.data.type === "signed-out" && body.hasAttribute("data-signed-in")) {
        location.replace("/signin?reason=signed_out");
      }
    };
  }

  // Live updates: a short-lived access token from our own server opens /ws; payment events
  // update every badge of that payment and re-render the detail's timeline.
  var labels = { pending: "Pending", processing: "Processing", completed: "Completed", failed: "Failed", cancelled: "Cancelled" };
  var lastRevokeReason = null;
  var attempts = 0;
  var refreshTimer = null;

  function applyPayment(data) {
    if (!data || !data.paymentId) return false;
    var seen = false;
    document.querySelectorAll('[data-payment-status="' + data.paymentId + '"]').forEach(function (el) {
      seen = true;
      if (data.status && el.getAttribute("data-status") !== data.status) {
        el.setAttribute("data-status", data.status);
        el.className = "badge badge-" + data.status + " changed";
        el.textContent = labels[data.status] || data.status;
      }
    });
    return seen;
  }

  function refreshPart(selector) {
    if (!window.htmx || !document.querySelector(selector)) return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      window.htmx.ajax("GET", location.pathname + location.search, { target: selector, select: selector, swap: "outerHTML" });
    }, 150);
  }

  function connect(fresh) {
    fetch("/session/socket" + (fresh ? "?fresh=1" : ""), { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) { location.replace("/session-ended?reason=expired"); throw new Error("signed out"); }
        if (!r.ok) throw new Error("socket token " + r.status);
        return r.json();
      })
      .then(function (j) {
        var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws?token=" + encodeURIComponent(j.token));
        var opened = Date.now();
        ws.onmessage = function (m) {
          var msg;
          try { msg = JSON.parse(m.data); } catch (_) { return; }
          if (msg.type === "connected") { attempts = 0; body.setAttribute("data-live-connected", "1"); return; }
          if (msg.type !== "event" || !msg.payload) return;
          var type = msg.payload.eventType || "", data = msg.payload.data || {};
          if (type === "session:revoked") { lastRevokeReason = data.reason || null; return; }
          if (type.indexOf("payment:") !== 0) return;
          applyPayment(data);
          if (document.querySelector('[data-payment-detail="' + data.paymentId + '"]')) refreshPart("#payment-live");
          else if (type === "payment:created" && document.getElementById("payments-results")) refreshPart("#payments-results");
          if (type === "payment:created" && data.recipientId && data.recipientId === j.userId) toast("You have a new incoming payment.");
        };
        ws.onclose = function (e) {
          body.removeAttribute("data-live-connected");
          if (e.code === 4001) {
            location.replace("/session-ended?reason=" + encodeURIComponent(lastRevokeReason || "revoked"));
            return;
          }
          if (e.code === 4002) {
            // Role changed: refresh the navigation with a new token, then reconnect.
            if (window.htmx) window.htmx.ajax("GET", "/session/nav", { target: "#nav", swap: "outerHTML" });
            toast("Your role has changed.");
            connect(true);
            return;
          }
          if (e.code === 1000 || e.code === 4008) return;
          // Backoff with full jitter (websocket.md §12); a connection up for a minute resets it.
          if (Date.now() - opened > 60000) attempts = 0;
          var cap = Math.min(30000, 1000 * Math.pow(2, attempts++));
          if (attempts <= 10) setTimeout(function () { connect(false); }, Math.random() * cap);
        };
      })
      .catch(function () {
        var cap = Math.min(30000, 1000 * Math.pow(2, attempts++));
        if (attempts <= 10) setTimeout(function () { connect(false); }, Math.random() * cap);
      });
  }
  if (body.hasAttribute("data-live") && "WebSocket" in window) connect(false);

  // Offline support: static assets and the offline page, never API answers.
  if ("serviceWorker" in navigator && (location.protocol === "https:" || location.hostname === "localhost" || location.hostname === "127.0.0.1")) {
    navigator.serviceWorker.register("/sw.js").catch(function () {});
  }
})();
