// Wayfarer viewer: the little the pages need beyond HTML.
// - pages of unfinished runs (<body data-refresh="1">) reload their [data-region] parts every few seconds;
// - <details data-src> load the artifact text when opened (LLM request/response, console log);
// - textareas marked data-json are checked as JSON before their form is sent.
"use strict";

(function () {
  const REFRESH_MS = 2500;
  const loaded = new Map(); // details id -> text already fetched, kept across refreshes

  function showText(details, text) {
    const pre = details.querySelector("pre");
    if (!pre) return;
    try {
      pre.textContent = JSON.stringify(JSON.parse(text), null, 2);
    } catch (_) {
      pre.textContent = text === "" ? "(empty)" : text;
    }
  }

  async function loadDetails(details) {
    if (!details.open || !details.dataset.src) return;
    if (loaded.has(details.id)) {
      showText(details, loaded.get(details.id));
      return;
    }
    try {
      const response = await fetch(details.dataset.src, { credentials: "same-origin" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const text = await response.text();
      loaded.set(details.id, text);
      showText(details, text);
    } catch (error) {
      const pre = details.querySelector("pre");
      if (pre) pre.textContent = "Could not load this (" + error.message + ").";
    }
  }

  function wireDetails(root) {
    root.querySelectorAll("details[data-src]").forEach((details) => {
      details.addEventListener("toggle", () => loadDetails(details));
      loadDetails(details);
    });
  }

  async function refresh() {
    if (document.body.dataset.refresh !== "1") return;
    if (!document.hidden) {
      let response;
      try {
        response = await fetch(window.location.href, { credentials: "same-origin", cache: "no-store" });
      } catch (_) {
        response = null; // a dropped connection: try again next time
      }
      if (response && (response.redirected || response.status === 401 || response.status === 403 ||
                       response.status === 404)) {
        return; // signed out or gone: stop, the next reload shows why
      }
      if (response && response.ok) {
        const next = new DOMParser().parseFromString(await response.text(), "text/html");
        document.querySelectorAll("[data-region]").forEach((region) => {
          const fresh = next.querySelector('[data-region="' + region.dataset.region + '"]');
          if (!fresh) return;
          const open = new Set(Array.from(region.querySelectorAll("details[open][id]"), (d) => d.id));
          region.innerHTML = fresh.innerHTML;
          region.querySelectorAll("details[id]").forEach((d) => { if (open.has(d.id)) d.open = true; });
          wireDetails(region);
        });
        document.body.dataset.refresh = next.body.dataset.refresh || "0";
        document.dispatchEvent(new CustomEvent("wayfarer:refreshed"));
      }
    }
    window.setTimeout(refresh, REFRESH_MS);
  }

  function jsonProblem(textarea) {
    const text = textarea.value.trim();
    if (!text) return "";
    try {
      JSON.parse(text);
      return "";
    } catch (error) {
      return "This is not valid JSON: " + error.message;
    }
  }

  function showProblem(textarea, problem) {
    const id = textarea.id + "-error";
    let note = document.getElementById(id);
    if (!problem) {
      if (note) note.remove();
      textarea.removeAttribute("aria-invalid");
      return;
    }
    if (!note) {
      note = document.createElement("p");
      note.id = id;
      note.className = "field-error";
      note.setAttribute("role", "alert");
      textarea.insertAdjacentElement("afterend", note);
    }
    note.textContent = problem;
    textarea.setAttribute("aria-invalid", "true");
    textarea.setAttribute("aria-describedby", id);
  }

  function wireJsonChecks() {
    document.querySelectorAll("form").forEach((form) => {
      const fields = form.querySelectorAll("textarea[data-json]");
      if (!fields.length) return;
      fields.forEach((field) => field.addEventListener("change", () => showProblem(field, jsonProblem(field))));
      form.addEventListener("submit", (event) => {
        let first = null;
        fields.forEach((field) => {
          const problem = jsonProblem(field);
          showProblem(field, problem);
          if (problem && !first) first = field;
        });
        if (first) {
          event.preventDefault();
          first.focus();
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    wireDetails(document);
    wireJsonChecks();
    if (document.body.dataset.refresh === "1") window.setTimeout(refresh, REFRESH_MS);
  });
})();
