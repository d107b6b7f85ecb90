// Astronomer page: load a galaxy (PGC, name, position, upload), align it by zoom and rotation, evaluate.
(function () {
  "use strict";
  const root = window.WEBROOT || "/";
  const $ = (id) => document.getElementById(id);
  const state = { source: null, angle: 0, scale: 1, auto: true, catalogue: false };

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  function showError(message) { const box = $("error"); box.textContent = message; box.hidden = !message; }
  function render() {
    $("sky").style.transform = `rotate(${state.angle}deg) scale(${state.scale})`;
    $("scale-readout").textContent = state.scale.toFixed(2);
    $("angle-readout").textContent = Math.round(state.angle);
    $("align-mode").textContent = state.auto ? "aligned by the measured position angle"
      : state.catalogue ? "aligned by the catalogue position angle" : "aligned by hand";
  }
  function setAlignment(angle, scale) {
    state.angle = ((angle % 360) + 360) % 360; state.scale = Math.min(20, Math.max(0.05, scale)); render();
  }
  async function getJSON(url, options) {
    const response = await fetch(url, options);
    let body;
    try { body = await response.json(); } catch (e) { body = { status: "failed", message: `Server error (${response.status}).` }; }
    if (!response.ok || body.status !== "success") throw new Error(body.message || `Request failed (${response.status}).`);
    return body;
  }
  function showImage(url, info) {
    const img = $("sky");
    img.hidden = false;
    img.onerror = () => showError("The image could not be loaded for this position.");
    img.src = url;
    $("target-info").textContent = info;
    $("evaluate").disabled = false;
    $("results").hidden = true;
  }
  function loadTarget(target) {
    // As the original: rotate by PA + 90 so the major axis lies horizontal; field = 1.5 × D25.
    state.source = { ra: target.ra, dec: target.dec, fov: `${target.fov} arcmin` };
    // Without a catalogue PA the server measures the angle on the image (state.auto).
    const hasPa = target.pa !== null && target.pa !== undefined;
    state.auto = !hasPa; state.catalogue = hasPa;
    setAlignment(hasPa ? Math.round(target.pa) + 90 : 0, 1);
    const query = new URLSearchParams({ ra: target.ra, dec: target.dec, fov: `${target.fov} arcmin` });
    const name = target.objname ? `${target.objname}${target.pgc ? " (PGC " + target.pgc + ")" : ""}` : "Sky position";
    showImage(`${root}predict/cutout?${query}`,
      `${name} — RA ${Number(target.ra).toFixed(4)}°, Dec ${Number(target.dec).toFixed(4)}°, field ${Number(target.fov).toFixed(2)}′`);
  }
  async function resolve(url) {
    showError("");
    try { loadTarget(await getJSON(url)); } catch (error) { showError(error.message); }
  }

  $("pgc-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const pgc = $("pgc").value.trim();
    if (!/^\d+$/.test(pgc)) { showError("A PGC number is a positive whole number."); return; }
    resolve(`${root}api/catalog/pgc/${pgc}`);
  });
  $("name-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("objname").value.trim();
    if (!name) { showError("Type a galaxy name."); return; }
    resolve(`${root}api/catalog/resolve?q=${encodeURIComponent(name)}`);
  });
  $("coords-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const position = `${$("ra").value.trim()} ${$("dec").value.trim()}`;
    const fov = `${$("fov").value.trim() || "3"} ${$("fov-unit").value}`;
    resolve(`${root}api/catalog/resolve?q=${encodeURIComponent(position)}&fov=${encodeURIComponent(fov)}`);
  });
  $("file").addEventListener("change", async () => {
    const file = $("file").files[0];
    if (!file) return;
    showError("");
    const form = new FormData(); form.append("file", file);
    try {
      const body = await getJSON(`${root}predict/upload`, { method: "POST", body: form, headers: { "X-CSRFToken": csrfToken() } });
      state.source = { upload_id: body.upload_id };
      state.auto = true; state.catalogue = false;  // turned by the measured angle unless the user turns it
      setAlignment(body.angle !== null && body.angle !== undefined ? body.angle : 0, 1);
      showImage(body.image_url, `Uploaded: ${file.name}`);
    } catch (error) { showError(error.message); }
  });

  $("zoom-in").addEventListener("click", () => setAlignment(state.angle, state.scale * 10 / 9));
  $("zoom-out").addEventListener("click", () => setAlignment(state.angle, state.scale * 0.9));
  function byHand() { state.auto = false; state.catalogue = false; }
  $("rot-cw").addEventListener("click", () => { byHand(); setAlignment(state.angle + 1, state.scale); });
  $("rot-ccw").addEventListener("click", () => { byHand(); setAlignment(state.angle - 1, state.scale); });
  $("auto-align").addEventListener("click", () => { state.auto = true; state.catalogue = false; render(); });
  $("viewer").addEventListener("wheel", (e) => { e.preventDefault(); setAlignment(state.angle, state.scale * (e.deltaY < 0 ? 10 / 9 : 0.9)); });
  $("viewer").addEventListener("keydown", (e) => {
    const moves = { ArrowUp: [0, 10 / 9], ArrowDown: [0, 0.9], ArrowLeft: [-1, 1], ArrowRight: [1, 1] };
    if (!moves[e.key]) return;
    e.preventDefault();
    if (moves[e.key][0]) byHand();
    setAlignment(state.angle + moves[e.key][0], state.scale * moves[e.key][1]);
  });

  function cell(row, text, className) { const td = row.insertCell(); td.textContent = text; if (className) td.className = className; return td; }
  function showResults(body) {
    $("model-input").src = body.image_url;
    const inc = body.inclinations.summary, rej = body.rejection_likelihood.summary;
    $("inc-median").textContent = inc.median; $("inc-mean").textContent = inc.mean; $("inc-stdev").textContent = inc.stdev;
    $("rej-median").textContent = rej.median.toFixed(0); $("rej-mean").textContent = rej.mean.toFixed(1); $("rej-stdev").textContent = rej.stdev.toFixed(1);
    $("rej-median").className = rej.median > 50 ? "reject-high" : "reject-low";
    const table = $("per-model"); table.replaceChildren();
    for (const [group, models] of Object.entries(body.inclinations)) {
      if (group === "summary") continue;
      for (const [name, value] of Object.entries(models)) { const row = table.insertRow(); cell(row, group); cell(row, name); cell(row, `${value}°`); }
    }
    for (const [name, value] of Object.entries(body.rejection_likelihood)) {
      if (name === "summary") continue;
      const row = table.insertRow(); cell(row, "reject"); cell(row, name); cell(row, `${value.toFixed(1)} %`, value > 50 ? "reject-high" : "");
    }
    $("model-version").textContent = body.model_version;
    const sources = { catalogue: "catalogue PA + 90°", measured: "measured PA", manual: "by hand", none: "not turned" };
    $("pa-measured").textContent = body.pa_measured === null || body.pa_measured === undefined ? "not measurable" : `${body.pa_measured.toFixed(1)}°`;
    $("pa-source").textContent = sources[body.pa_source] || body.pa_source || "";
    $("axial-inclination").textContent = body.axial_ratio_inclination === null || body.axial_ratio_inclination === undefined
      ? "no isophote found" : `${body.axial_ratio_inclination.toFixed(1)}° (b/a = ${body.axial_ratio.toFixed(2)})`;
    if (state.auto && body.pa_source === "measured" && body.pa_measured !== null) setAlignment(body.pa_measured + 90, state.scale);
    $("alarm").hidden = !body.alarm;
    $("alarm").textContent = body.alarm ? `Check this galaxy by eye: ${body.alarm_reason}.` : "";
    $("results").hidden = false;
  }
  $("evaluate").addEventListener("click", async () => {
    if (!state.source) return;
    showError(""); $("processing").hidden = false; $("evaluate").disabled = true;
    try {
      const body = await getJSON(`${root}predict/evaluate`, {
        method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ ...state.source, angle: state.angle, scale: state.scale, auto: state.auto, catalogue: state.catalogue }),
      });
      showResults(body);
    } catch (error) { showError(error.message); }
    finally { $("processing").hidden = true; $("evaluate").disabled = false; }
  });
  render();
})();
