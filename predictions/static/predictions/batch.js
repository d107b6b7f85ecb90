// Batch page: send a CSV of names/PGCs or a zip of images to /api/batch, follow the job with a progress
// bar, then offer the result files and show the rows with the same verdict columns as the single page.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const app = $("batch-app");
  const root = (app && app.dataset.webroot) || window.WEBROOT || "/";
  const POLL_MS = 1000;
  const MODEL_NOT_READY = "The inclination models are still being prepared on this server; try again in a few minutes.";
  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const deg = (v) => (isNum(v) ? `${Number(v.toFixed(2))}` : "—");  // the server's values, as the single page shows them
  const pct = (v) => (isNum(v) ? `${Math.round(v)} %` : "—");
  let polling = null;

  function showError(message) { $("batch-error").textContent = message || ""; $("batch-error").hidden = !message; }
  async function getJSON(url, options) {
    let reply;
    try { reply = await window.InclinetHttp.requestJSON(url, options); } catch (e) { throw Object.assign(new Error("The server could not be reached; check your connection."), { status: 0 }); }
    const response = reply.response;
    const body = reply.body || { message: `Server error (${response.status}).` };
    if (!response.ok || body.status === "failed") throw Object.assign(new Error(body.message || `Request failed (${response.status}).`), { status: response.status });
    return body;
  }
  function friendly(error) {
    if (error.status === 503) { $("model-banner").hidden = false; return MODEL_NOT_READY; }
    return error.message;
  }

  // The verdict of one row: the server's when given, else one read from the older keys (never greener).
  function verdictOf(row) {
    const inc = row.inclinations.summary, rej = row.rejection_likelihood.summary;
    let code = ["inclined", "face_on", "rejected", "uncertain"].includes(row.verdict_code) ? row.verdict_code : null;
    if (!code) code = rej.median >= 50 ? "rejected" : row.alarm ? "uncertain" : inc.median <= 47 ? "face_on" : "inclined";
    if (code === "inclined" && rej.median >= 50) code = "uncertain";
    const text = row.verdict || {
      inclined: `inclined spiral, i = ${Math.round(inc.median)}°`, face_on: "likely face-on (< 45°)",
      rejected: "rejected: probably not a clean spiral", uncertain: `uncertain: ${row.alarm_reason || "check by eye"}`,
    }[code];
    return { code, text };
  }
  // Each cell carries its column's name, so a phone can show a row as a labelled card.
  const COLUMNS = Array.from(document.querySelectorAll("#batch-table thead th"), (th) => th.textContent);
  function cell(tr, text, className) {
    const td = tr.insertCell(); td.textContent = text; td.dataset.label = COLUMNS[td.cellIndex] || "";
    if (className) td.className = className;
    return td;
  }
  function showRows(rows) {
    const tbody = $("batch-table").tBodies[0];
    tbody.replaceChildren();
    for (const row of rows) {
      const tr = tbody.insertRow();
      cell(tr, row.item);
      if (row.status !== "success") {
        cell(tr, "");
        const td = cell(tr, "", "verdict-cell");
        const pill = document.createElement("span"); pill.className = "pill verdict-rejected"; pill.textContent = "failed";
        td.append(pill, ` ${row.message || ""}`);
        for (let i = 0; i < 5; i += 1) cell(tr, "");
        continue;
      }
      const galaxy = [row.objname, row.pgc ? `PGC ${row.pgc}` : ""].filter(Boolean).join(" · ");
      cell(tr, galaxy);
      const verdict = verdictOf(row);
      const td = cell(tr, "", "verdict-cell");
      const pill = document.createElement("span");
      pill.className = `pill verdict-${verdict.code}`; pill.textContent = verdict.code.replace("_", "-");
      td.append(pill, ` ${verdict.text}`);
      cell(tr, deg(row.inclinations.summary.median));
      cell(tr, isNum(row.inclination_error) ? deg(row.inclination_error) : "—");
      cell(tr, isNum(row.catalog_inclination) ? deg(row.catalog_inclination) : "—");
      cell(tr, pct(row.rejection_likelihood.summary.median), row.rejection_likelihood.summary.median >= 50 ? "reject-high" : "");
      cell(tr, row.model_version || "");
    }
    $("batch-results").hidden = false;
  }
  async function follow(job) {
    $("batch-progress").hidden = false;
    const detail = `${root}api/batch/${job.id}`;
    let current = job;
    for (;;) {
      $("batch-bar").value = isNum(current.progress) ? current.progress : 0;
      $("batch-status").textContent = `${current.state}: ${current.done} of ${current.total} done` +
        (current.failed ? `, ${current.failed} could not be evaluated` : "");
      if (current.state === "succeeded" || current.state === "failed") break;
      await new Promise((resolve) => { polling = setTimeout(resolve, POLL_MS); });
      try { current = await getJSON(detail); } catch (error) { showError(friendly(error)); return; }
    }
    $("batch-start").disabled = false;
    if (current.state !== "succeeded") { showError("The batch job failed on the server; see its status above and try again."); return; }
    $("batch-csv").href = current.result_csv; $("batch-json").href = current.result_json;
    $("batch-downloads").hidden = false;
    try { showRows(await getJSON(current.result_json)); } catch (error) { showError(friendly(error)); }
  }
  $("batch-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("batch-file").files[0];
    if (!file) { showError("Choose a CSV or zip file."); return; }
    clearTimeout(polling);
    showError(""); $("batch-downloads").hidden = true; $("batch-results").hidden = true; $("batch-progress").hidden = true;
    $("batch-start").disabled = true;
    const form = new FormData(); form.append("file", file);
    try {
      const job = await getJSON(`${root}api/batch`, { method: "POST", body: form });
      await follow(job);
    } catch (error) {
      showError(friendly(error));
    } finally {
      $("batch-start").disabled = false;
    }
  });
})();
