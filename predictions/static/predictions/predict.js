// Astronomer page: load a galaxy (PGC, name, position, upload), align it (angle box, coarse and fine steps,
// the measured PA), evaluate, and read a verdict that can be cited (permalink) and downloaded (JSON, CSV).
// Newer answer keys (verdict, verdict_code, inclination_error, catalog_inclination, permalink) are used when
// the server sends them; without them the page falls back to what the older keys say.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const app = $("predict-app");
  const root = (app && app.dataset.webroot) || window.WEBROOT || "/";
  const COARSE_STEP = 15, FINE_STEP = 1;
  const MODEL_NOT_READY = "The inclination models are still being prepared on this server; try again in a few minutes.";
  const VERDICT_CODES = ["inclined", "face_on", "rejected", "uncertain"];
  const state = {
    source: null,      // what /predict/evaluate is asked about: {ra, dec, fov} or {upload_id}
    origin: null,      // how the user found it, for the permalink: {pgc}, {name}, {ra, dec, fov} or {upload}
    target: null,      // the catalogue answer, for a named galaxy (its field can be edited)
    angle: 0, scale: 1, auto: true, catalogue: false,
    paMeasured: null,  // from the upload or the last evaluation
    imageReady: false,
    result: null,
    loadSerial: 0,     // a newer load makes an older one's late answer irrelevant
  };

  // ---- formatting: one rule for every number on the page ----
  // The server rounds every number once (summaries to 0.01°, the verdict and its error bar to whole degrees,
  // half up); the page shows those same values and never rounds them a second way.
  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const deg = (v) => (isNum(v) ? `${Number(v.toFixed(2))}°` : "—");
  const whole = (v) => Math.floor(v + 0.5);                          // as the verdict text: 74.5 → 75
  const pct = (v) => (isNum(v) ? `${whole(v)} %` : "—");             // rejection likelihoods: whole percent
  const wholeDeg = (v) => (isNum(v) ? `${whole(v)}°` : "—");

  function showError(message) { const box = $("error"); box.textContent = message || ""; box.hidden = !message; }
  function setEvaluateEnabled() { $("evaluate").disabled = !(state.source && state.imageReady); }
  function clearMessages() {
    showError("");
    $("results").hidden = true;
    $("processing").hidden = true;
    $("copy-status").textContent = "";
    state.result = null;
  }
  function showModelBanner(show) { $("model-banner").hidden = !show; }

  // ---- alignment ----
  function render() {
    $("sky").style.transform = `rotate(${state.angle}deg) scale(${state.scale})`;
    $("scale-readout").textContent = state.scale.toFixed(2);
    $("angle-readout").textContent = Math.round(state.angle);
    if (document.activeElement !== $("angle")) $("angle").value = String(Math.round(state.angle * 10) / 10);
    const unturned = state.auto && state.result && state.result.body.pa_source === "none";
    $("align-mode").textContent = unturned ? "not turned: too round for a position angle"
      : state.auto ? "aligned by the measured position angle"
      : state.catalogue ? "aligned by the catalogue position angle" : "aligned by hand";
    $("align-pa").disabled = !isNum(state.paMeasured);
    $("pa-hint").textContent = isNum(state.paMeasured) ? `(measured PA ${deg(state.paMeasured)})` : "";
  }
  function setAlignment(angle, scale) {
    state.angle = ((angle % 360) + 360) % 360;
    state.scale = Math.min(20, Math.max(0.05, scale));
    render();
  }
  function byHand() { state.auto = false; state.catalogue = false; }
  function rotate(step) { byHand(); setAlignment(state.angle + step, state.scale); }
  // The viewer's clockwise turn that lays a major axis of astronomical PA `pa` horizontal.
  const turnForPa = (pa) => (((pa + 90) % 180) + 180) % 180;

  // ---- requests ----
  class RequestError extends Error {
    constructor(message, status) { super(message); this.status = status; }
  }
  async function getJSON(url, options) {
    let reply;
    try { reply = await window.InclinetHttp.requestJSON(url, options); } catch (e) { throw new RequestError("The server could not be reached; check your connection and try again.", 0); }
    const response = reply.response;
    const body = reply.body || { status: "failed", message: `Server error (${response.status}).` };
    if (!response.ok || body.status !== "success") throw new RequestError(body.message || `Request failed (${response.status}).`, response.status);
    return body;
  }
  function friendly(error) {
    if (error.status === 503) { showModelBanner(true); return MODEL_NOT_READY; }
    if (error.status === 429) return `${error.message} (too many requests: wait a minute and try again)`;
    return error.message;
  }

  // ---- the image ----
  function clearImage(message) {
    const img = $("sky");
    img.hidden = true; img.removeAttribute("src");
    state.imageReady = false;
    $("viewer-status").textContent = message || "";
    setEvaluateEnabled();
  }
  // Resolves true once the image is on screen; false (with the reason shown) when it is not.
  function showImage(url, serial) {
    return new Promise((resolve) => {
      const img = $("sky");
      img.onload = () => {
        if (serial !== state.loadSerial) return resolve(false);
        img.hidden = false; state.imageReady = true; $("viewer-status").textContent = "";
        setEvaluateEnabled(); resolve(true);
      };
      img.onerror = () => {
        if (serial !== state.loadSerial) return resolve(false);
        clearImage("No image");
        showError("The image could not be displayed; try loading it again.");
        resolve(false);
      };
      img.src = url;
    });
  }
  // Ask for the cut-out first, so the server's own reason (service down, field too large) is shown now,
  // not after Evaluate; then show it (the server keeps the cut-out in its cache).
  async function loadCutout(source, serial) {
    const url = `${root}predict/cutout?${new URLSearchParams(source)}`;
    clearImage("Loading the image …");
    let response;
    try { response = await fetch(url); } catch (e) {
      if (serial === state.loadSerial) { clearImage("No image"); showError("The server could not be reached; check your connection and try again."); }
      return false;
    }
    if (serial !== state.loadSerial) return false;
    if (!response.ok) {
      let message = `The image could not be loaded (${response.status}).`;
      try { const body = await response.json(); if (body.message) message = body.message; } catch (e) { /* not JSON */ }
      clearImage("No image");
      showError(message);
      return false;
    }
    return showImage(url, serial);
  }

  function describe(target) {
    const name = target.objname ? `${target.objname}${target.pgc ? " (PGC " + target.pgc + ")" : ""}`
      : target.pgc ? `PGC ${target.pgc}` : "Sky position";
    return `${name} — RA ${Number(target.ra).toFixed(4)}°, Dec ${Number(target.dec).toFixed(4)}°, field ${Number(target.fov).toFixed(2)}′`;
  }
  function newLoad(origin) {
    state.loadSerial += 1;
    clearMessages();
    state.origin = origin; state.paMeasured = null; state.target = null; state.source = null;
    return state.loadSerial;
  }
  // Load a catalogue answer; `named` targets (PGC, name) get an editable field size.
  async function loadTarget(target, serial, { named = false, alignment } = {}) {
    state.target = named ? { ...target } : null;
    // As the original: rotate by PA + 90 so the major axis lies horizontal; field = 1.5 × D25.
    // Without a catalogue PA the server measures the angle on the image (state.auto).
    // A position need not be the catalogue galaxy's centre: as /api/coords, its angle is measured on the image.
    const hasPa = named && isNum(target.pa);
    state.auto = !hasPa; state.catalogue = hasPa;
    setAlignment(hasPa ? Math.round(target.pa) + 90 : 0, 1);
    if (alignment) applyAlignment(alignment);
    state.source = { ra: target.ra, dec: target.dec, fov: `${target.fov} arcmin` };
    $("field-form").hidden = !named;
    if (named) $("field-size").value = String(Math.round(target.fov * 100) / 100);
    $("target-info").textContent = describe(target);
    return loadCutout(state.source, serial);
  }
  function applyAlignment(alignment) {
    if (isNum(alignment.angle)) { byHand(); setAlignment(alignment.angle, isNum(alignment.scale) ? alignment.scale : state.scale); }
    else if (isNum(alignment.scale)) setAlignment(state.angle, alignment.scale);
  }
  async function resolveAndLoad(url, origin, options) {
    const serial = newLoad(origin);
    clearImage("Looking it up …");
    $("field-form").hidden = true;
    try {
      const target = await getJSON(url);
      if (serial !== state.loadSerial) return false;
      return await loadTarget(target, serial, options);
    } catch (error) {
      if (serial === state.loadSerial) { clearImage(""); showError(friendly(error)); }
      return false;
    }
  }
  const loadPgc = (pgc, options) => resolveAndLoad(`${root}api/catalog/pgc/${pgc}`, { pgc }, { named: true, ...options });
  const loadName = (name, options) => resolveAndLoad(`${root}api/catalog/resolve?q=${encodeURIComponent(name)}`, { name }, { named: true, ...options });
  const loadPosition = (ra, dec, fov, options) => resolveAndLoad(
    `${root}api/catalog/resolve?q=${encodeURIComponent(`${ra} ${dec}`)}&fov=${encodeURIComponent(fov)}`, { ra, dec, fov }, options);

  $("pgc-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const pgc = $("pgc").value.trim().replace(/^(pgc|leda)\s*/i, "");
    if (!/^\d+$/.test(pgc)) { clearMessages(); showError("A PGC number is a positive whole number."); return; }
    loadPgc(pgc);
  });
  $("name-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("objname").value.trim();
    if (!name) { clearMessages(); showError("Type a galaxy name."); return; }
    loadName(name);
  });
  $("coords-form").addEventListener("submit", (e) => {
    e.preventDefault();
    loadPosition($("ra").value.trim(), $("dec").value.trim(), `${$("fov").value.trim() || "3"} ${$("fov-unit").value}`);
  });
  // A named galaxy's field can be changed; the server says when it is too large.
  function reloadField(fov) {
    clearMessages();
    if (!state.target) return Promise.resolve(false);
    if (!isNum(fov) || fov <= 0) { showError("The field size is a positive number of arcminutes."); return Promise.resolve(false); }
    state.loadSerial += 1;
    state.target.fov = fov;
    state.origin = { ...state.origin, fov: `${fov} arcmin` };
    state.source = { ra: state.target.ra, dec: state.target.dec, fov: `${fov} arcmin` };
    $("target-info").textContent = describe(state.target);
    return loadCutout(state.source, state.loadSerial);
  }
  $("field-form").addEventListener("submit", (e) => {
    e.preventDefault();
    reloadField(Number($("field-size").value));
  });
  $("file").addEventListener("change", async () => {
    const file = $("file").files[0];
    if (!file) return;
    const serial = newLoad({ upload: file.name });
    $("field-form").hidden = true;
    clearImage("Uploading …");
    const form = new FormData(); form.append("file", file);
    try {
      const body = await getJSON(`${root}predict/upload`, { method: "POST", body: form });
      if (serial !== state.loadSerial) return;
      state.source = { upload_id: body.upload_id };
      state.paMeasured = isNum(body.pa_measured) ? body.pa_measured : null;
      state.auto = true; state.catalogue = false;  // turned by the measured angle unless the user turns it
      setAlignment(isNum(body.angle) ? body.angle : 0, 1);
      $("target-info").textContent = `Uploaded: ${file.name}`;
      await showImage(body.image_url, serial);
    } catch (error) {
      if (serial === state.loadSerial) { clearImage(""); showError(friendly(error)); }
    }
  });

  // ---- alignment controls ----
  $("zoom-in").addEventListener("click", () => setAlignment(state.angle, state.scale * 10 / 9));
  $("zoom-out").addEventListener("click", () => setAlignment(state.angle, state.scale * 0.9));
  $("rot-cw").addEventListener("click", () => rotate(FINE_STEP));
  $("rot-ccw").addEventListener("click", () => rotate(-FINE_STEP));
  $("rot-cw-coarse").addEventListener("click", () => rotate(COARSE_STEP));
  $("rot-ccw-coarse").addEventListener("click", () => rotate(-COARSE_STEP));
  function angleFromBox() {
    const value = Number($("angle").value);
    if ($("angle").value.trim() === "" || !isNum(value)) return;
    byHand(); setAlignment(value, state.scale);
  }
  $("angle").addEventListener("input", angleFromBox);
  $("angle").addEventListener("change", () => { angleFromBox(); $("angle").value = String(Math.round(state.angle * 10) / 10); });
  $("angle").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); angleFromBox(); render(); } });
  $("align-pa").addEventListener("click", () => {
    if (!isNum(state.paMeasured)) return;
    byHand(); setAlignment(turnForPa(state.paMeasured), state.scale);
    $("align-mode").textContent = "aligned to the measured position angle";
  });
  $("auto-align").addEventListener("click", () => {
    state.auto = true; state.catalogue = false;
    if (isNum(state.paMeasured)) setAlignment(turnForPa(state.paMeasured), state.scale); else render();
  });
  $("viewer").addEventListener("wheel", (e) => { e.preventDefault(); setAlignment(state.angle, state.scale * (e.deltaY < 0 ? 10 / 9 : 0.9)); });
  $("viewer").addEventListener("keydown", (e) => {
    const step = e.shiftKey ? COARSE_STEP : FINE_STEP;
    const moves = { ArrowUp: [0, 10 / 9], ArrowDown: [0, 0.9], ArrowLeft: [-step, 1], ArrowRight: [step, 1] };
    if (!moves[e.key]) return;
    e.preventDefault();
    if (moves[e.key][0]) byHand();
    setAlignment(state.angle + moves[e.key][0], state.scale * moves[e.key][1]);
  });

  // ---- the verdict ----
  // The server's verdict when it gives one; otherwise one read from the older keys, never friendlier than them.
  function verdictOf(body) {
    const inc = body.inclinations.summary, rej = body.rejection_likelihood.summary;
    const error = isNum(body.inclination_error) ? body.inclination_error : null;
    let code = VERDICT_CODES.includes(body.verdict_code) ? body.verdict_code : null;
    let text = typeof body.verdict === "string" && body.verdict ? body.verdict : null;
    if (!code) {
      if (rej.median >= 50) code = "rejected";
      else if (body.alarm) code = "uncertain";
      else if (inc.median <= 47) code = "face_on";
      else code = "inclined";
    }
    // A rejection likelihood of 50 % or more is never shown as a clean result, whatever the label says.
    if (code === "inclined" && rej.median >= 50) code = "uncertain";
    if (!text) {
      const spread = error !== null ? error : inc.stdev;
      text = {
        inclined: `inclined spiral, i = ${wholeDeg(inc.median)} ± ${wholeDeg(Math.max(1, spread))}`,
        face_on: "likely face-on (< 45°): below the range the models cover",
        rejected: `rejected (${pct(rej.median)} likelihood): probably not a clean spiral`,
        uncertain: `uncertain, i = ${wholeDeg(inc.median)}: ${body.alarm_reason || "check this galaxy by eye"}`,
      }[code];
    }
    return { code, text };
  }
  function placeOnScale(element, low, high) {
    const clamp = (v) => Math.min(90, Math.max(0, v));
    element.style.left = `${(clamp(low) / 90) * 100}%`;
    element.style.width = `${((clamp(high) - clamp(low)) / 90) * 100}%`;
  }
  function cell(row, text, className) { const td = row.insertCell(); td.textContent = text; if (className) td.className = className; return td; }
  function rejectClass(value) { return value >= 50 ? "reject-high" : value >= 20 ? "reject-mid" : ""; }

  // ---- permalinks and downloads ----
  function permalinkFor(body) {
    const serverLink = typeof body.permalink === "string" && body.permalink ? new URL(body.permalink, window.location.href).href : null;
    const origin = state.origin || {};
    const params = new URLSearchParams();
    if (origin.pgc) params.set("pgc", origin.pgc);
    else if (origin.name) params.set("name", origin.name);
    else if (origin.ra !== undefined) { params.set("ra", origin.ra); params.set("dec", origin.dec); params.set("fov", origin.fov); }
    else return serverLink;  // an upload lives only in this browser (unless the server keeps it)
    if (origin.fov && (origin.pgc || origin.name)) params.set("fov", origin.fov);
    if (!state.auto && !state.catalogue) params.set("angle", String(Math.round(state.angle * 10) / 10));
    if (Math.abs(state.scale - 1) > 1e-6) params.set("scale", state.scale.toFixed(4));
    if (body.model_version) params.set("model", body.model_version);
    return new URL(`${root}predict/?${params}`, window.location.href).href;
  }
  // The same columns as the API's ?format=csv: nested keys joined with dots in the order of the JSON, lists
  // joined with ";", and text a spreadsheet would run as a formula prefixed with a quote.
  function flatten(data, prefix, out) {
    if (data && typeof data === "object" && !Array.isArray(data)) {
      for (const [key, value] of Object.entries(data)) flatten(value, prefix ? `${prefix}.${key}` : key, out);
    } else if (Array.isArray(data)) out[prefix] = data.join(";");
    else out[prefix] = data;
    return out;
  }
  function csvCell(value) {
    if (value === null || value === undefined) return "";
    let text = typeof value === "boolean" ? (value ? "true" : "false") : String(value);
    if (typeof value === "string" && /^[=+\-@\t\r]/.test(text) && !/^[-+]?\d+(\.\d+)?( [a-z]+)?$/.test(text)) text = `'${text}`;
    return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }
  function resultDocument(result) {
    return { status: "success", ...result.body, permalink: result.permalink };
  }
  function resultCsv(result) {
    const row = flatten(resultDocument(result), "", {});
    return `${Object.keys(row).map(csvCell).join(",")}\r\n${Object.values(row).map(csvCell).join(",")}\r\n`;
  }
  function fileStem() {
    const origin = state.origin || {};
    const label = origin.pgc ? `pgc${origin.pgc}` : origin.name || origin.upload || (origin.ra !== undefined ? `${origin.ra}_${origin.dec}` : "result");
    return `inclinet-${String(label).replace(/[^A-Za-z0-9._+-]+/g, "_").slice(0, 60)}`;
  }
  function download(text, type, filename) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const link = document.createElement("a");
    link.href = url; link.download = filename; document.body.appendChild(link); link.click(); link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
  $("download-json").addEventListener("click", () => {
    if (!state.result) return;
    download(`${JSON.stringify(resultDocument(state.result), null, 2)}\n`, "application/json", `${fileStem()}.json`);
  });
  $("download-csv").addEventListener("click", () => {
    if (state.result) download(resultCsv(state.result), "text/csv", `${fileStem()}.csv`);
  });
  $("copy-permalink").addEventListener("click", async () => {
    if (!state.result || !state.result.permalink) return;
    const text = state.result.permalink;
    let copied = false;
    try { await navigator.clipboard.writeText(text); copied = true; } catch (e) {
      const box = document.createElement("textarea");
      box.value = text; box.setAttribute("readonly", ""); box.className = "offscreen";
      document.body.appendChild(box); box.select();
      try { copied = document.execCommand("copy"); } catch (e2) { copied = false; }
      box.remove();
    }
    $("copy-status").textContent = copied ? "Permalink copied." : "Copy the link beside this button.";
  });

  // ---- results ----
  function showCatalogue(value) {
    // An upload or a bare sky position has no catalogue galaxy to compare with.
    $("catalogue-block").hidden = value === null && !(state.target && state.target.pgc);
    $("catalog-inclination").textContent = value !== null ? deg(value) : "not known";
    $("scale-catalogue").hidden = value === null;
    if (value !== null) placeOnScale($("scale-catalogue"), value, value);
  }
  // The page's evaluation is of an image; the catalogue's inclination of a named galaxy comes beside it.
  async function fetchCatalogue(pgc, serial) {
    try {
      const body = await getJSON(`${root}predict/galaxy/${encodeURIComponent(pgc)}`);
      if (serial !== state.loadSerial || !state.result || !isNum(body.catalog_inclination)) return;
      state.result.body = { ...state.result.body, catalog_inclination: body.catalog_inclination };
      showCatalogue(body.catalog_inclination);
    } catch (e) { /* the verdict stands without it */ }
  }
  function showResults(body) {
    const permalink = permalinkFor(body);
    state.result = { body, permalink };
    const inc = body.inclinations.summary, rej = body.rejection_likelihood.summary;
    const verdict = verdictOf(body);
    $("verdict").textContent = verdict.text;
    $("verdict").className = `verdict verdict-${verdict.code}`;
    $("verdict").dataset.code = verdict.code;
    const error = isNum(body.inclination_error) ? body.inclination_error : null;
    const bar = error !== null ? Math.max(1, whole(error)) : null;  // as the verdict: at least ± 1°
    $("inclination-value").textContent = verdict.code === "face_on" ? "i < 45°"
      : bar !== null ? `i = ${whole(inc.median)} ± ${bar}°` : `i = ${wholeDeg(inc.median)}`;
    $("inclination-value").className = `big${verdict.code === "rejected" ? " unreliable" : ""}`;
    $("error-meaning").textContent = verdict.code === "face_on" ? "(below the 45–90° the models measure)"
      : verdict.code === "rejected" ? "(not to be trusted: the image was rejected)"
      : error !== null ? "(1σ error, calibrated on validation galaxies)"
      : `(the models agree to ± ${deg(inc.stdev)}; not a full error bar)`;
    const spread = error !== null ? error : inc.stdev;
    placeOnScale($("scale-error"), inc.median - spread, inc.median + spread);
    placeOnScale($("scale-value"), inc.median, inc.median);
    showCatalogue(isNum(body.catalog_inclination) ? body.catalog_inclination : null);
    if (!isNum(body.catalog_inclination) && state.target && state.target.pgc) fetchCatalogue(state.target.pgc, state.loadSerial);

    $("model-input").src = body.image_url;
    // The tables' headings carry the units ([deg], [%]); the cells hold the numbers alone.
    const bare = (text) => text.replace(/\s?[°%]$/, "");
    $("inc-median").textContent = bare(deg(inc.median)); $("inc-mean").textContent = bare(deg(inc.mean)); $("inc-stdev").textContent = bare(deg(inc.stdev));
    $("rej-median").textContent = bare(pct(rej.median)); $("rej-mean").textContent = bare(pct(rej.mean)); $("rej-stdev").textContent = bare(pct(rej.stdev));
    $("rej-median").className = rejectClass(rej.median);
    const table = $("per-model"); table.replaceChildren();
    // Members as the models are named (model4, model41, …), not by the original's group keys.
    const members = [];
    let byName = body.member_inclinations;
    if (!byName || typeof byName !== "object") {
      byName = {};
      for (const [group, models] of Object.entries(body.inclinations)) {
        if (group !== "summary" && models && typeof models === "object") Object.assign(byName, models);
      }
    }
    for (const [name, value] of Object.entries(byName)) members.push([name, deg(value), ""]);
    const rejections = body.member_rejections && typeof body.member_rejections === "object" ? body.member_rejections
      : Object.fromEntries(Object.entries(body.rejection_likelihood).filter(([name]) => name !== "summary"));
    for (const [name, value] of Object.entries(rejections)) members.push([name, "", pct(value), rejectClass(value)]);
    const tbody = table.createTBody();
    for (const [name, inclination, rejection, className] of members) {
      const row = tbody.insertRow(); cell(row, name); cell(row, inclination); cell(row, rejection, className);
    }
    $("model-version").textContent = body.model_version;
    const sources = { catalogue: "catalogue PA + 90°", measured: "measured PA", manual: "by hand", none: "not turned" };
    $("pa-measured").textContent = isNum(body.pa_measured) ? deg(body.pa_measured) : "not measurable";
    $("pa-source").textContent = sources[body.pa_source] || body.pa_source || "";
    $("axial-inclination").textContent = isNum(body.axial_ratio_inclination)
      ? `${deg(body.axial_ratio_inclination)} (b/a = ${isNum(body.axial_ratio) ? body.axial_ratio.toFixed(2) : "—"})` : "no isophote found";
    if (isNum(body.pa_measured)) state.paMeasured = body.pa_measured;
    if (state.auto && body.pa_source === "measured" && isNum(body.pa_measured)) setAlignment(turnForPa(body.pa_measured), state.scale);
    render();
    $("alarm").hidden = !body.alarm;
    $("alarm").textContent = body.alarm ? `Check this galaxy by eye: ${body.alarm_reason}.` : "";
    $("permalink").hidden = !permalink;
    $("copy-permalink").disabled = !permalink;
    if (permalink) { $("permalink").href = permalink; $("permalink").textContent = "Permalink"; }
    $("copy-status").textContent = permalink ? "" : "An uploaded image has no permalink; download the JSON to keep the result.";
    const wanted = new URLSearchParams(window.location.search).get("model");
    $("version-note").hidden = !(wanted && body.model_version && wanted !== body.model_version);
    $("version-note").textContent = `This link was made with model ${wanted}; the server now runs ${body.model_version}, so the numbers can differ.`;
    $("results").hidden = false;
  }
  async function evaluate() {
    if (!state.source || !state.imageReady) return;
    const serial = state.loadSerial;
    showError(""); $("results").hidden = true; $("processing").hidden = false; $("evaluate").disabled = true;
    try {
      const body = await getJSON(`${root}predict/evaluate`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ...state.source, angle: state.angle, scale: state.scale, auto: state.auto, catalogue: state.catalogue }),
      });
      if (serial !== state.loadSerial) return;
      showModelBanner(false);
      showResults(body);
      // One column (phones): the answer is below the image, so bring it into view.
      if (window.matchMedia("(max-width: 1100px)").matches) $("results").scrollIntoView({ block: "start" });
    } catch (error) {
      if (serial === state.loadSerial) showError(friendly(error));
    } finally {
      $("processing").hidden = true; setEvaluateEnabled();
    }
  }
  $("evaluate").addEventListener("click", evaluate);

  // ---- permalinks: /predict/?pgc=…, ?name=…, ?ra=&dec=&fov= load and evaluate on arrival ----
  async function fromPermalink() {
    const params = new URLSearchParams(window.location.search);
    const number = (key) => (params.has(key) && isNum(Number(params.get(key))) ? Number(params.get(key)) : undefined);
    const alignment = { angle: number("angle"), scale: number("scale") };
    const fov = params.get("fov");
    let loaded = false;
    if (params.get("pgc")) {
      const pgc = params.get("pgc").trim();
      $("pgc").value = pgc;
      if (!/^\d+$/.test(pgc)) { showError("A PGC number is a positive whole number."); return; }
      loaded = await loadPgc(pgc, { alignment });
    } else if (params.get("name")) {
      $("objname").value = params.get("name");
      loaded = await loadName(params.get("name"), { alignment });
    } else if (params.get("ra") && params.get("dec")) {
      $("ra").value = params.get("ra"); $("dec").value = params.get("dec");
      const field = fov || "3 arcmin";
      const match = field.match(/^\s*([0-9.]+)\s*(arcmin|arcsec|deg)?\s*$/);
      if (match) { $("fov").value = match[1]; $("fov-unit").value = match[2] || "arcmin"; }
      loaded = await loadPosition(params.get("ra"), params.get("dec"), field, { alignment });
      return loaded && evaluate();
    } else {
      return;
    }
    // A named galaxy's permalink may carry an edited field size (arcmin).
    const field = fov ? Number.parseFloat(fov) : NaN;
    if (isNum(field) && state.target && state.target.fov !== field) loaded = await reloadField(field);
    if (loaded) await evaluate();
  }
  render();
  fromPermalink();
})();
