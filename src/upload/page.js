// The upload page (page.html), served as /page.js: the page's CSP allows no inline script.
// Reads the server's facts from GET /api/v1/info, posts files to POST /api/v1/images and shows
// each result beside its original. Server text is only ever set with textContent.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("upload-form");
  const input = $("file-input");
  const zone = $("drop-zone");
  const format = $("format");
  const quality = $("quality");
  const qualityValue = $("quality-value");
  const preset = $("preset");
  const width = $("width");
  const height = $("height");
  const fit = $("fit");
  const submit = $("submit");
  const status = $("status");
  const errorBox = $("error");
  const resultsSection = $("results-section");
  const results = $("results");
  const total = $("total");
  const template = $("result-template");

  let info = null;
  let objectUrls = [];

  // ---- formatting ----------------------------------------------------------------------------

  function bytes(n) {
    if (!Number.isFinite(n)) return "?";
    if (n < 1000) return n + " B";
    const units = ["kB", "MB", "GB"];
    let v = n / 1000;
    let i = 0;
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return (v >= 100 ? v.toFixed(0) : v.toFixed(1)) + " " + units[i];
  }

  function duration(secs) {
    const parts = [];
    const days = Math.floor(secs / 86400);
    const hours = Math.floor((secs % 86400) / 3600);
    const minutes = Math.floor((secs % 3600) / 60);
    const seconds = Math.floor(secs % 60);
    // Whole days read better as hours below a week ("24 hours", the usual promise).
    if (days >= 7) parts.push(plural(days, "day"));
    const h = days >= 7 ? hours : hours + days * 24;
    if (h) parts.push(plural(h, "hour"));
    if (minutes) parts.push(plural(minutes, "minute"));
    if (seconds || parts.length === 0) parts.push(plural(seconds, "second"));
    return parts.join(" ");
  }

  // The name a result is offered under: the original's stem with the output's extension.
  function resultName(name, fmt) {
    const ext = { jpeg: "jpg", webp: "webp", avif: "avif", png: "png" }[fmt];
    if (!ext) return name;
    const dot = name.lastIndexOf(".");
    return (dot > 0 ? name.slice(0, dot) : name) + "." + ext;
  }

  function plural(n, unit) { return n + " " + unit + (n === 1 ? "" : "s"); }

  // The API's savings is a fraction of the input (0.63 = 63 % smaller).
  function percent(fraction) {
    return (Math.round(fraction * 1000) / 10).toFixed(1) + " %";
  }

  // expires_at: an RFC 3339 string or Unix seconds.
  function toDate(v) {
    if (typeof v === "number") return new Date(v < 1e12 ? v * 1000 : v);
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  // ---- errors --------------------------------------------------------------------------------

  const FALLBACK = {
    400: "The request was not understood: check the options.",
    404: "That link no longer exists.",
    413: "The upload is too large.",
    415: "That file is not an image this service reads.",
    422: "The image could not be read (damaged, or too many pixels).",
    429: "Too many uploads from here. Please wait and try again.",
    451: "This image cannot be accepted.",
    503: "The service is busy. Please try again shortly.",
  };

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function clearError() {
    errorBox.hidden = true;
    errorBox.textContent = "";
  }

  async function errorText(resp) {
    let message = "";
    try {
      const body = await resp.json();
      if (body && typeof body.message === "string") message = body.message;
    } catch (_) { /* not JSON: fall back to the status */ }
    if (!message) message = FALLBACK[resp.status] || "The server answered " + resp.status + ".";
    const retry = resp.headers.get("Retry-After");
    if (retry && /^\d+$/.test(retry) && (resp.status === 429 || resp.status === 503)) {
      message += " Try again in " + duration(Number(retry)) + ".";
    }
    return message;
  }

  // ---- the server's facts --------------------------------------------------------------------

  async function loadInfo() {
    const loading = $("privacy-loading");
    try {
      const resp = await fetch("/api/v1/info", { headers: { Accept: "application/json" } });
      if (!resp.ok) throw new Error(String(resp.status));
      info = await resp.json();
    } catch (_) {
      loading.textContent = "Could not read this server's retention settings.";
      return;
    }
    const facts = [];
    if (Number.isFinite(info.retention_secs)) {
      let f = "Results are deleted " + duration(info.retention_secs) + " after upload";
      if (Number.isFinite(info.idle_ttl_secs)) {
        f += ", or after " + duration(info.idle_ttl_secs) + " without a download if that comes first";
      }
      facts.push(f + ". You can delete each one sooner.");
    }
    if (info.memory_only === true) {
      facts.push("Files are kept in memory only and never written to disk.");
    } else if (info.memory_only === false) {
      facts.push("Results may also be written to this server's disk until they are deleted.");
    }
    if (info.screening) {
      facts.push("Uploads are screened against a list of known illegal images; a refused upload is not kept.");
    } else if (info.screening === false) {
      facts.push("Uploads are not screened.");
    }
    const list = $("privacy-facts");
    list.replaceChildren(...facts.map((t) => {
      const li = document.createElement("li");
      li.textContent = t;
      return li;
    }));
    list.hidden = facts.length === 0;
    loading.hidden = facts.length > 0;

    const hints = [];
    if (Number.isFinite(info.max_files)) hints.push("up to " + plural(info.max_files, "file"));
    if (Number.isFinite(info.max_bytes)) hints.push(bytes(info.max_bytes) + " each");
    $("limits-hint").textContent = hints.length ? "(" + hints.join(", ") + ")" : "";

    if (Array.isArray(info.formats)) {
      for (const opt of Array.from(format.options)) {
        if (opt.value !== "auto" && !info.formats.includes(opt.value)) opt.remove();
      }
    }
    if (Array.isArray(info.presets)) {
      for (const p of info.presets) {
        if (!p || typeof p.name !== "string") continue;
        const opt = document.createElement("option");
        opt.value = p.name;
        opt.textContent = p.name + " (" + p.width + "×" + p.height + ")";
        preset.append(opt);
      }
    }
  }

  // ---- controls ------------------------------------------------------------------------------

  function syncControls() {
    qualityValue.textContent = quality.value;
    quality.disabled = format.value === "png";
    const sized = preset.value !== "";
    width.disabled = sized;
    height.disabled = sized;
    fit.disabled = !sized && !width.value && !height.value;
  }

  function showChosen() {
    const chosen = $("selected");
    chosen.replaceChildren(...Array.from(input.files).map((f) => {
      const li = document.createElement("li");
      li.textContent = f.name + " (" + bytes(f.size) + ")";
      return li;
    }));
    clearError();
  }

  for (const el of [format, quality, preset, width, height]) {
    el.addEventListener("input", syncControls);
    el.addEventListener("change", syncControls);
  }
  input.addEventListener("change", showChosen);

  // Drag and drop onto the zone; a drop anywhere else must not navigate away from the page.
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (e) => e.preventDefault());
  }
  zone.addEventListener("dragenter", () => zone.classList.add("dragging"));
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", (e) => {
    if (!zone.contains(e.relatedTarget)) zone.classList.remove("dragging");
  });
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    if (e.dataTransfer && e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      showChosen();
    }
  });

  // ---- upload --------------------------------------------------------------------------------

  function check(files) {
    if (files.length === 0) return "Choose at least one image first.";
    if (info && Number.isFinite(info.max_files) && files.length > info.max_files) {
      return "At most " + plural(info.max_files, "file") + " at once, please.";
    }
    if (info && Number.isFinite(info.max_bytes)) {
      const big = files.find((f) => f.size > info.max_bytes);
      if (big) return big.name + " is larger than the " + bytes(info.max_bytes) + " limit.";
    }
    return null;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearError();
    const files = Array.from(input.files);
    const problem = check(files);
    if (problem) {
      showError(problem);
      input.focus();
      return;
    }
    const body = new FormData();
    for (const f of files) body.append("file", f, f.name);
    body.append("format", format.value);
    if (!quality.disabled) body.append("quality", quality.value);
    if (preset.value) {
      body.append("preset", preset.value);
    } else {
      if (width.value) body.append("width", width.value);
      if (height.value) body.append("height", height.value);
    }
    if (!fit.disabled) body.append("fit", fit.value);

    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    status.textContent = "Compressing " + plural(files.length, "file") + "…";
    try {
      let resp;
      try {
        resp = await fetch("/api/v1/images", {
          method: "POST",
          body,
          headers: { Accept: "application/json" },
        });
      } catch (_) {
        showError("Could not reach the server. Check the connection and try again.");
        status.textContent = "";
        return;
      }
      if (!resp.ok) {
        showError(await errorText(resp));
        status.textContent = "";
        return;
      }
      let answer;
      try {
        answer = await resp.json();
      } catch (_) {
        showError("The server's answer could not be read.");
        status.textContent = "";
        return;
      }
      render(files, answer);
      status.textContent = "Done.";
    } finally {
      submit.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });

  function render(files, answer) {
    for (const url of objectUrls) URL.revokeObjectURL(url);
    objectUrls = [];
    results.replaceChildren();
    const list = Array.isArray(answer.files) ? answer.files : [];
    let inSum = 0;
    let outSum = 0;
    list.forEach((r, i) => {
      const file = files[i];
      const li = template.content.firstElementChild.cloneNode(true);
      const name = file ? file.name : "Image " + (i + 1);
      li.dataset.id = r.id || "";
      li.querySelector(".name").textContent = name;

      const before = li.querySelector(".before-img");
      if (file) {
        const url = URL.createObjectURL(file);
        objectUrls.push(url);
        before.src = url;
      }
      before.alt = "Original: " + name;
      li.querySelector(".before-bytes").textContent = bytes(r.input_bytes);

      const after = li.querySelector(".after-img");
      after.src = r.link;
      after.alt = "Compressed: " + name;
      li.querySelector(".after-bytes").textContent = bytes(r.output_bytes) +
        (r.format ? " " + String(r.format).toUpperCase() : "");
      li.querySelector(".after-dims").textContent =
        (r.width && r.height ? "· " + r.width + "×" + r.height + " " : "") +
        (Number.isFinite(r.ms) ? "· " + r.ms + " ms" : "");

      const savings = li.querySelector(".savings");
      savings.dataset.savings = String(r.savings);
      savings.dataset.inputBytes = String(r.input_bytes);
      savings.dataset.outputBytes = String(r.output_bytes);
      const s = Number(r.savings);
      if (s >= 0) {
        savings.textContent = "Saved " + percent(s) + " (" + bytes(r.input_bytes) + " → " +
          bytes(r.output_bytes) + ")";
      } else {
        savings.classList.add("larger");
        savings.textContent = "Larger by " + percent(-s) + " (" + bytes(r.input_bytes) + " → " +
          bytes(r.output_bytes) + ")";
      }

      const link = li.querySelector("a.download");
      link.href = r.link;
      link.textContent = "Download " + resultName(name, r.format);
      const expiry = li.querySelector(".expiry");
      const when = toDate(r.expires_at);
      if (when) {
        const t = document.createElement("time");
        t.dateTime = when.toISOString();
        t.textContent = when.toLocaleString();
        expiry.append("Link works until ", t);
      }

      const del = li.querySelector(".delete");
      del.setAttribute("aria-label", "Delete " + name + " now");
      del.addEventListener("click", () => erase(li, r.link, name));

      if (Number.isFinite(r.input_bytes)) inSum += r.input_bytes;
      if (Number.isFinite(r.output_bytes)) outSum += r.output_bytes;
      results.append(li);
    });

    total.dataset.inputBytes = String(inSum);
    total.dataset.outputBytes = String(outSum);
    const saved = inSum > 0 ? 1 - outSum / inSum : 0;
    total.dataset.savings = String(saved);
    total.textContent = "Total: " + bytes(inSum) + " → " + bytes(outSum) + " (" +
      (saved >= 0 ? "saved " + percent(saved) : "larger by " + percent(-saved)) + ") for " +
      plural(list.length, "file");

    const zip = $("zip");
    if (answer.zip) {
      $("zip-download").href = answer.zip;
      zip.hidden = false;
    } else {
      zip.hidden = true;
    }
    resultsSection.hidden = false;
    total.setAttribute("tabindex", "-1");
    total.focus();
  }

  async function erase(li, link, name) {
    const del = li.querySelector(".delete");
    del.disabled = true;
    let resp;
    try {
      resp = await fetch(link, { method: "DELETE" });
    } catch (_) {
      showError("Could not reach the server to delete " + name + ".");
      del.disabled = false;
      return;
    }
    // 404: already gone (expired or downloaded), which is what was asked.
    if (!resp.ok && resp.status !== 404) {
      showError(await errorText(resp));
      del.disabled = false;
      return;
    }
    li.classList.add("deleted");
    li.querySelector(".after-img").removeAttribute("src");
    const a = li.querySelector("a.download");
    a.removeAttribute("href");
    a.setAttribute("aria-disabled", "true");
    li.querySelector(".expiry").textContent = "Deleted from the server.";
    del.remove();
  }

  syncControls();
  loadInfo();
})();
