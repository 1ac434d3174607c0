// Live updates: the realtime service pushes ids of ticket events (README, "Live updates"); this page then
// fetches its own changed regions over HTTP, so every access check stays in the web tier. When the socket
// drops, it reconnects with backoff from the last event id seen; meanwhile a banner says updates are paused.
"use strict";

(function () {
  const root = document.querySelector("[data-live-regions]");
  if (!root || !window.WebSocket || !window.fetch) {
    return;
  }
  const regions = root.getAttribute("data-live-regions").split(" ");
  const ticketId = root.getAttribute("data-live-ticket");
  const banner = document.getElementById("live-banner");
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const MAX_DELAY = 30000;
  // The service closed a long-lived socket so access is checked again (realtime.consumers.RECONNECT).
  const RECONNECT_NOW = 4000;
  let lastEventId = null;
  let failures = 0;
  let refreshTimer = null;
  let refreshing = false;
  let refreshAgain = false;

  function paused(isPaused) {
    banner.hidden = !isPaused;
    document.documentElement.dataset.live = isPaused ? "paused" : "on";
  }

  // Fetch this page again and swap the live regions, except one the agent is working in.
  async function refresh() {
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (!response.ok) {
        return;
      }
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      regions.forEach(function (id) {
        const current = document.getElementById(id);
        const replacement = fresh.getElementById(id);
        if (!current || !replacement || current.contains(document.activeElement)) {
          return;
        }
        current.replaceWith(replacement);
        if (window.htmx) {
          window.htmx.process(replacement);
        }
      });
      document.dispatchEvent(new CustomEvent("live:refreshed"));
    } finally {
      refreshing = false;
      if (refreshAgain) {
        refreshAgain = false;
        scheduleRefresh();
      }
    }
  }

  // Events come in bursts (a reply is queued, then sent): one fetch for a burst.
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 150);
  }

  function reconnectLater() {
    failures += 1;
    paused(true);
    const delay = Math.min(MAX_DELAY, 1000 * 2 ** Math.min(failures - 1, 5));
    setTimeout(connect, delay / 2 + Math.random() * (delay / 2));
  }

  async function connect() {
    let socketUrl;
    try {
      const response = await fetch("/api/v1/realtime/token/", {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) {
        throw new Error("no socket token: " + response.status);
      }
      const grant = await response.json();
      const query = new URLSearchParams({ token: grant.token });
      if (ticketId) {
        query.set("ticket", ticketId);
      }
      if (lastEventId !== null) {
        query.set("last_event_id", lastEventId);
      }
      socketUrl = grant.url + "?" + query.toString();
    } catch (error) {
      reconnectLater();
      return;
    }
    const socket = new WebSocket(socketUrl);
    socket.addEventListener("open", function () {
      failures = 0;
      paused(false);
    });
    socket.addEventListener("message", function (message) {
      const update = JSON.parse(message.data);
      if (update.type === "event") {
        lastEventId = Math.max(lastEventId || 0, update.id);
        scheduleRefresh();
      } else if (update.type === "hello" || update.type === "caught_up" || update.type === "resync") {
        if (update.type !== "hello" || lastEventId === null) {
          lastEventId = Math.max(lastEventId || 0, update.last_event_id || 0);
        }
        if (update.type === "resync") {
          scheduleRefresh();
        }
      }
    });
    socket.addEventListener("close", function (event) {
      if (event.code === RECONNECT_NOW) {
        connect();
      } else {
        reconnectLater();
      }
    });
  }

  connect();
})();
