// The workspace's own script: small behaviours htmx does not cover. Listeners sit on the document, so they
// keep working on regions htmx swaps in. No inline scripts: the pages' Content-Security-Policy forbids them.
"use strict";

(function () {
  // The composer: reply or internal note, and Ctrl/Cmd+Enter sends.
  function syncComposer(composer) {
    const note = composer.querySelector('input[name="mode"][value="note"]').checked;
    composer.classList.toggle("note-mode", note);
    composer.querySelector("[data-where-reply]").hidden = note;
    composer.querySelector("[data-where-note]").hidden = !note;
    composer.querySelectorAll("[data-reply-only]").forEach(function (button) {
      button.hidden = note;
    });
  }

  function syncAll(root) {
    root.querySelectorAll("[data-composer]").forEach(syncComposer);
  }

  document.addEventListener("change", function (event) {
    const composer = event.target.closest("[data-composer]");
    if (composer && event.target.name === "mode") {
      syncComposer(composer);
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) {
      return;
    }
    const composer = event.target.closest("[data-composer]");
    if (composer) {
      event.preventDefault();
      composer.requestSubmit(composer.querySelector("[data-send]"));
    }
  });

  // Remote images in a customer's HTML load only when the agent asks (tracking pixels stay silent).
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-show-images]");
    if (!button) {
      return;
    }
    const entry = button.closest(".entry");
    entry.querySelectorAll("img[data-remote-src]").forEach(function (image) {
      image.src = image.getAttribute("data-remote-src");
      image.removeAttribute("data-remote-src");
    });
    button.closest(".remote-images").remove();
  });

  document.addEventListener("DOMContentLoaded", function () {
    syncAll(document);
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    syncAll(event.detail.elt.parentNode || document);
  });
})();
