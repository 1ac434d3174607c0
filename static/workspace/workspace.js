// The workspace's own script: small behaviours htmx does not cover, and the keyboard shortcuts. Listeners
// sit on the document, so they keep working on regions htmx swaps in. No inline scripts: the pages'
// Content-Security-Policy forbids them.
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

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-show-shortcuts]")) {
      document.getElementById("shortcuts").showModal();
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

  // Keyboard: j/k move through the list, o or Enter opens, r replies, n writes an internal note, a assigns
  // the ticket to me, / goes to the search box, ? lists the shortcuts. Never while typing in a field.
  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  function moveInList(step) {
    const rows = Array.from(document.querySelectorAll(".ticket-row > a"));
    if (rows.length === 0) {
      return;
    }
    const current = rows.indexOf(document.activeElement);
    const next = current === -1 ? 0 : Math.min(rows.length - 1, Math.max(0, current + step));
    rows[next].focus();
    rows[next].scrollIntoView({ block: "nearest" });
  }

  function compose(mode) {
    const composer = document.querySelector("[data-composer]");
    if (!composer) {
      return;
    }
    composer.querySelector('input[name="mode"][value="' + mode + '"]').checked = true;
    syncComposer(composer);
    composer.querySelector("textarea").focus();
  }

  const shortcuts = {
    j: function () {
      moveInList(1);
    },
    k: function () {
      moveInList(-1);
    },
    o: function () {
      if (document.activeElement.matches(".ticket-row > a")) {
        document.activeElement.click();
      }
    },
    r: function () {
      compose("reply");
    },
    n: function () {
      compose("note");
    },
    a: function () {
      const assign = document.querySelector("[data-assign-to-me]");
      if (assign) {
        assign.click();
      }
    },
    "/": function () {
      const box = document.querySelector("[data-search-box]");
      if (box) {
        box.focus();
        box.select();
      }
    },
    "?": function () {
      const dialog = document.getElementById("shortcuts");
      if (dialog.open) {
        dialog.close();
      } else {
        dialog.showModal();
      }
    },
  };

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) {
      return;
    }
    const action = shortcuts[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    syncAll(document);
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    syncAll(event.detail.elt.parentNode || document);
  });
})();
