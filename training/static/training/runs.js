// Live runs: polls the staff JSON endpoint and redraws progress bars and loss/MAE curves on canvases.
(function () {
  const root = document.getElementById("jobs");
  if (!root) return;
  const params = new URLSearchParams(location.search);
  const url = root.dataset.url + (params.get("job") ? "?job=" + encodeURIComponent(params.get("job")) : "");
  const colours = { loss: "#2f6fd6", val_loss: "#d66b2f", mae: "#1f7a36", val_mae: "#8a2fd6", accuracy: "#1f7a36", val_accuracy: "#8a2fd6" };

  function fmtEta(s) {
    if (s === null || s === undefined) return "";
    s = Math.round(s);
    return s >= 60 ? Math.floor(s / 60) + " min " + (s % 60) + " s left" : s + " s left";
  }

  function draw(canvas, run) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = w * ratio; canvas.height = h * ratio;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.clearRect(0, 0, w, h);
    const total = Math.max(run.total_steps || 1, 1);
    const epochs = Math.max(run.epochs || 1, 1);
    const series = [];
    // Per-step running loss (thin), then per-epoch curves (thick dots), all against steps.
    if (run.live && run.live.length) series.push({ name: "step loss", colour: "#9bb7e6", pts: run.live.map(p => [p[0], p[1]]), thin: true });
    const perEpoch = total / epochs;
    for (const key of Object.keys(run.history || {})) {
      if (!colours[key]) continue;
      series.push({ name: key, colour: colours[key], pts: run.history[key].map((v, i) => [(i + 1) * perEpoch, v]) });
    }
    const values = series.flatMap(s => s.pts.map(p => p[1])).filter(v => v !== null && isFinite(v));
    if (!values.length) { ctx.fillStyle = "#8895a7"; ctx.fillText("waiting for the first steps…", 8, h / 2); return; }
    const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
    const x = s => 28 + (w - 36) * s / total, y = v => h - 14 - (h - 24) * (v - lo) / span;
    ctx.fillStyle = "#8895a7"; ctx.font = "10px sans-serif";
    ctx.fillText(hi.toPrecision(3), 2, 10); ctx.fillText(lo.toPrecision(3), 2, h - 14);
    let legend = 30;
    for (const s of series) {
      ctx.strokeStyle = s.colour; ctx.fillStyle = s.colour; ctx.lineWidth = s.thin ? 1 : 2;
      ctx.beginPath();
      s.pts.forEach((p, i) => { if (p[1] === null) return; i ? ctx.lineTo(x(p[0]), y(p[1])) : ctx.moveTo(x(p[0]), y(p[1])); });
      ctx.stroke();
      if (!s.thin) s.pts.forEach(p => { if (p[1] !== null) { ctx.beginPath(); ctx.arc(x(p[0]), y(p[1]), 2.5, 0, 7); ctx.fill(); } });
      ctx.fillText(s.name, legend, h - 2); legend += ctx.measureText(s.name).width + 10;
    }
  }

  function runRow(run) {
    const row = document.createElement("div");
    row.className = "run"; row.id = "run-" + run.id;
    row.innerHTML = '<div><a class="name"></a><div class="meta status"></div></div>' +
      '<div><progress max="1" value="0"></progress><div class="meta detail"></div></div><canvas></canvas>';
    row.querySelector("a").href = root.dataset.runUrl + run.id + "/";
    return row;
  }

  // An ensemble build: one bar over generation, training and evaluation, its stage, and its failure.
  function updateBuild(job) {
    let box = document.getElementById("job-" + job.id);
    if (!box) {
      box = document.createElement("div"); box.className = "job build"; box.id = "job-" + job.id;
      box.innerHTML = '<h3></h3><div class="meta jobmeta"></div>' +
        '<div class="build-progress"><progress max="1" value="0"></progress> <span class="pct"></span></div>' +
        '<p class="error build-error" hidden></p>';
      root.appendChild(box);
    }
    box.querySelector("h3").textContent = "Build #" + job.id + " · " + job.profile + " · " + job.status;
    const meta = box.querySelector(".jobmeta");
    meta.textContent = (job.version || "") + " · " + (job.stage || "");
    if (job.ensemble) {
      const a = document.createElement("a");
      a.href = root.dataset.ensembleUrl + job.ensemble_id + "/"; a.textContent = job.ensemble;
      meta.append(" · ", a);
    }
    box.querySelector("progress").value = job.progress;
    box.querySelector(".pct").textContent = Math.round(100 * job.progress) + " %";
    const error = box.querySelector(".build-error");
    error.textContent = job.error || ""; error.hidden = !job.error;
  }

  function update(jobs) {
    if (jobs.length) root.querySelectorAll(":scope > p").forEach(p => p.remove());
    for (const job of jobs) {
      if (job.kind === "build") { updateBuild(job); continue; }
      let box = document.getElementById("job-" + job.id);
      if (!box) {
        box = document.createElement("div"); box.className = "job"; box.id = "job-" + job.id;
        box.innerHTML = '<h3></h3><div class="meta jobmeta"></div><div class="runs"></div>';
        root.appendChild(box);
      }
      box.querySelector("h3").textContent = "Retrain #" + job.id + " · " + job.status;
      const link = job.ensemble ? ' · candidate <a href="' + root.dataset.ensembleUrl + job.ensemble_id + '/">' + job.ensemble + "</a>" : "";
      box.querySelector(".jobmeta").innerHTML = "snapshot " + (job.snapshot || "being built") + " · queue " + job.queue + link +
        (job.error ? ' · <span class="error"></span>' : "");
      if (job.error) box.querySelector(".jobmeta .error").textContent = job.error;
      const runs = box.querySelector(".runs");
      for (const run of job.runs) {
        let row = document.getElementById("run-" + run.id);
        if (!row) { row = runRow(run); runs.appendChild(row); }
        row.querySelector(".name").textContent = run.name + " (" + run.kind + ")";
        const status = row.querySelector(".status");
        status.textContent = run.status + (run.sessions && run.sessions.length > 1 ? " · resumed ×" + (run.sessions.length - 1) : "");
        status.className = "meta status status-" + run.status;
        row.querySelector("progress").value = run.progress;
        row.querySelector(".detail").textContent = "epoch " + run.epoch + "/" + (run.epochs || "?") + " · step " + run.step + "/" + run.total_steps +
          (run.loss !== null ? " · loss " + Number(run.loss).toPrecision(3) : "") + (run.status === "running" ? " · " + fmtEta(run.eta_seconds) : "");
        draw(row.querySelector("canvas"), run);
      }
    }
  }

  let timer = null;
  async function poll() {
    try {
      const { response, body } = await window.InclinetHttp.requestJSON(url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        update(body.jobs);
        const busy = body.jobs.some(j => !["done", "failed"].includes(j.status));
        // A build reports a few times a minute; a retrain's runs many times a second.
        const training = body.jobs.some(j => j.kind !== "build" && !["done", "failed"].includes(j.status));
        timer = setTimeout(poll, training ? 700 : busy ? 2000 : 5000);
        return;
      }
    } catch (e) { /* the next poll retries */ }
    timer = setTimeout(poll, 3000);
  }
  poll();
})();
