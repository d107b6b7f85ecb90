/* Galaxy Inclination Zoo: the two-step measurement page (vanilla JS, no build step).
 *
 * Step 1: the target (yellow panel) is moved among nine standards 45–85° (gaps = 5° intervals).
 * Step 2: nine standards 1° apart covering the chosen interval. The server computes the result from
 * the two neighbours and checks that they really were adjacent on this page.
 * A failed or empty answer never leaves the page on "Loading…": it says what happened, offers Retry, and
 * tries again by itself with exponential backoff (never sooner than the server's Retry-After).
 */
(function () {
  "use strict";
  const root = document.getElementById("zoo");
  if (!root) return;
  const base = (window.WEBROOT || "/") + "zoo/api/";
  const tutorial = root.dataset.mode === "tutorial";
  const $ = (id) => document.getElementById(id);
  const strip = $("strip");
  const retryButton = $("btn-retry");
  const state = {
    task: null, step: 1, standards: [], pos: 0, low: null, step1: [],
    display: root.dataset.display || "colour", inverted: root.dataset.inverted === "1",
    zoom: parseFloat(root.dataset.zoom || "1") || 1, angle: 0, startedAt: null,
    practice: [], practiceIndex: 0, busy: false,
  };
  // Automatic retries: 2, 4, 8 … 60 s after a failure; an empty queue is asked again every 30 s … 5 min.
  const RETRY = { baseS: 2, maxS: 60, emptyBaseS: 30, emptyMaxS: 300 };
  const retry = { timer: null, tick: null, attempt: 0, loader: null };

  function csrf() {
    const m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  async function api(path, options) {
    const opts = Object.assign({ method: "GET", headers: {} }, options || {});
    if (opts.body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(opts.body);
    }
    if (opts.method !== "GET") opts.headers["X-CSRFToken"] = csrf();
    let response;
    try {
      response = await fetch(base + path, Object.assign(opts, { credentials: "same-origin" }));
    } catch (e) {  // offline, server down, connection reset
      return { ok: false, status: 0, retryAfter: 0, data: { message: "The server cannot be reached." } };
    }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!data || typeof data !== "object") {
      data = { message: response.ok ? "Unexpected answer from the server." : "The server answered " + response.status + "." };
    }
    return { ok: response.ok, status: response.status, data: data, retryAfter: retryAfterSeconds(response) };
  }

  // Retry-After is seconds or an HTTP date; 0 when absent or unreadable.
  function retryAfterSeconds(response) {
    const value = response.headers.get("Retry-After");
    if (!value) return 0;
    const seconds = Number(value);
    if (Number.isFinite(seconds)) return Math.max(0, seconds);
    const when = Date.parse(value);
    return Number.isFinite(when) ? Math.max(0, (when - Date.now()) / 1000) : 0;
  }

  function cancelRetry() {
    clearTimeout(retry.timer);
    clearInterval(retry.tick);
    retry.timer = retry.tick = null;
    if (retryButton) retryButton.hidden = true;
  }

  // Say what went wrong, show Retry, and call loader again after the backoff (with a visible countdown).
  function retryLater(loader, text, kind, retryAfter, emptyQueue) {
    cancelRetry();
    const baseS = emptyQueue ? RETRY.emptyBaseS : RETRY.baseS;
    const maxS = emptyQueue ? RETRY.emptyMaxS : RETRY.maxS;
    const waitS = Math.ceil(Math.max(Math.min(maxS, baseS * Math.pow(2, retry.attempt)), Math.min(retryAfter || 0, 600)));
    retry.attempt += 1;
    retry.loader = loader;
    let left = waitS;
    const show = () => say(text + " Trying again in " + left + " s.", kind);
    show();
    retry.tick = setInterval(() => { left = Math.max(1, left - 1); show(); }, 1000);
    retry.timer = setTimeout(() => { cancelRetry(); loader(); }, waitS * 1000);
    if (retryButton) retryButton.hidden = false;
  }

  function retryNow() {
    const loader = retry.loader;
    cancelRetry();
    if (loader) loader();
  }

  // Standards the page can place a galaxy among: a non-empty list, each with a numeric inclination.
  function usableStandards(list) {
    return Array.isArray(list) && list.length > 0 && list.every((s) => s && typeof s.inclination === "number");
  }

  function usableTask(task) {
    return !!task && typeof task === "object" && task.id !== null && task.id !== undefined
      && usableStandards(task.standards);
  }

  function say(text, kind) {
    const box = $("message");
    box.textContent = text || "";
    box.className = "zoo-message" + (kind ? " " + kind : "");
  }

  function degrees(item) {
    return item && typeof item.inclination === "number" ? Math.round(item.inclination) + "°" : "?";
  }

  function imageFor(images) {
    return (images && (images[state.display] || images.colour)) || "";
  }

  function panel(item, isTarget) {
    const div = document.createElement("div");
    div.className = "panel" + (isTarget ? " target" : " std");
    const img = document.createElement("img");
    img.alt = isTarget ? "target galaxy" : "standard " + degrees(item);
    img.src = imageFor(item.images);
    img.draggable = false;
    const filters = [];
    // A band missing for a galaxy falls back to its colour image, shown grey like the bands.
    if (state.display !== "colour") filters.push("grayscale(1)");
    if (state.inverted) filters.push("invert(1)");
    img.style.filter = filters.join(" ");
    const scale = isTarget ? state.zoom : (item.scale || 1);
    const angle = isTarget ? state.angle : (item.angle || 0);
    img.style.transform = "scale(" + scale + ") rotate(" + angle + "deg)";
    const frame = document.createElement("div");
    frame.className = "frame";
    frame.appendChild(img);
    div.appendChild(frame);
    const label = document.createElement("div");
    label.className = "label";
    label.textContent = isTarget ? "target" : degrees(item);
    div.appendChild(label);
    if (isTarget) {
      div.id = "target";
      div.draggable = true;
      div.tabIndex = 0;
      div.addEventListener("dragstart", (e) => { e.dataTransfer.setData("text/plain", "target"); div.classList.add("dragging"); });
      div.addEventListener("dragend", () => div.classList.remove("dragging"));
    } else {
      div.dataset.id = item.id;
      div.dataset.inclination = item.inclination;
    }
    return div;
  }

  function render() {
    strip.innerHTML = "";
    state.standards = Array.isArray(state.standards) ? state.standards : [];
    state.pos = Math.max(0, Math.min(state.standards.length, state.pos || 0));
    const target = state.task ? { images: state.task.images } : null;
    state.standards.forEach((s, i) => {
      if (i === state.pos && target) strip.appendChild(panel(target, true));
      const p = panel(s, false);
      p.dataset.index = i;
      strip.appendChild(p);
    });
    if (state.pos === state.standards.length && target) strip.appendChild(panel(target, true));
    document.querySelectorAll("button.mode").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.display === state.display)));
    $("btn-invert").setAttribute("aria-pressed", String(state.inverted));
    $("view-state").textContent = "zoom " + state.zoom.toFixed(1) + "×, " + state.angle + "°";
    describe();
  }

  function neighbours() {
    const left = (state.pos > 0 && state.standards[state.pos - 1]) || null;
    const right = (state.pos < state.standards.length && state.standards[state.pos]) || null;
    return { left: left, right: right };
  }

  function describe() {
    const n = neighbours();
    let text;
    if (!state.task || !state.standards.length) text = "";
    else if (state.step === 1 && !n.left) text = "Placed left of 45°: face-on (step 2 will be skipped).";
    else if (!n.left) text = "Left of " + degrees(n.right);
    else if (!n.right) text = "Right of " + degrees(n.left);
    else text = "Between " + degrees(n.left) + " and " + degrees(n.right);
    $("position").textContent = text;
    $("position").dataset.pos = state.pos;
  }

  function move(delta) {
    if (!state.task) return;
    state.pos = Math.max(0, Math.min(state.standards.length, state.pos + delta));
    render();
  }

  // Drag-and-drop: dropping on a standard's left half puts the target before it, right half after it.
  strip.addEventListener("dragover", (e) => { e.preventDefault(); });
  strip.addEventListener("drop", (e) => {
    e.preventDefault();
    const over = e.target.closest(".panel.std");
    if (!over) return;
    const index = parseInt(over.dataset.index, 10);
    const rect = over.getBoundingClientRect();
    const after = e.clientX > rect.left + rect.width / 2;
    state.pos = index + (after ? 1 : 0);
    render();
  });

  document.addEventListener("keydown", (e) => {
    if (e.target && (e.target.tagName === "TEXTAREA" || e.target.tagName === "INPUT")) return;
    if (e.key === "a" || e.key === "A" || e.key === "ArrowLeft") { move(-1); e.preventDefault(); }
    if (e.key === "d" || e.key === "D" || e.key === "ArrowRight") { move(1); e.preventDefault(); }
  });
  $("btn-left").addEventListener("click", () => move(-1));
  $("btn-right").addEventListener("click", () => move(1));

  const step1Text = $("step-text").innerHTML;

  function setStep(step) {
    state.step = step;
    $("step-label").textContent = "Step " + step + " of 2.";
    $("btn-confirm").hidden = step !== 1;
    $("btn-back").hidden = step !== 2;
    $("btn-submit").hidden = step !== 2;
    if (step === 2) {
      $("step-text").textContent = "Now place it among standards 1° apart. The result is the mean of its two neighbours.";
    } else {
      $("step-text").innerHTML = step1Text;
    }
  }

  function reset() {
    state.startedAt = new Date().toISOString();
    state.angle = 0;
    setStep(1);
    state.standards = state.step1;
    state.pos = Math.floor(state.standards.length / 2);
    document.querySelectorAll("input[name=reason]").forEach((c) => { c.checked = false; });
    if ($("note")) $("note").value = "";
    render();
  }

  function clearTask() {
    state.task = null; state.standards = []; state.pos = 0; setStep(1); render();
  }

  async function loadTask() {
    cancelRetry();
    say("Loading…");
    try {
      const r = await api("tasks/next", { method: "POST" });
      if (r.ok && usableTask(r.data.task)) {
        state.task = r.data.task;
        state.step1 = r.data.task.standards;
        reset();
        retry.attempt = 0;
        say("");
        return;
      }
      clearTask();
      if (r.status === 404) retryLater(loadTask, r.data.message || "No galaxy is waiting right now.", "info", r.retryAfter, true);
      else if (r.ok) retryLater(loadTask, "The server sent an incomplete task.", "error", 0, false);
      else retryLater(loadTask, r.data.message || "The server answered " + r.status + ".", "error", r.retryAfter, false);
    } catch (e) {  // a bug here must not leave the page on "Loading…"
      clearTask();
      retryLater(loadTask, "This galaxy could not be shown.", "error", 0, false);
    }
  }

  async function loadPractice() {
    cancelRetry();
    say("Loading…");
    const r = await api("tutorial");
    const targets = r.data.targets, standards = r.data.standards;
    if (!r.ok || !Array.isArray(targets) || !targets.length || !usableStandards(standards)) {
      clearTask();
      retryLater(loadPractice, r.data.message || "No practice galaxies.", "error", r.retryAfter, false);
      return;
    }
    retry.attempt = 0;
    state.practice = targets;
    state.practiceIndex = 0;
    state.step1 = standards;
    nextPractice();
  }

  function nextPractice() {
    if (state.practiceIndex >= state.practice.length) {
      api("me/preferences", { method: "PATCH", body: { tutorial_done: true } });
      state.task = null; state.standards = []; render();
      say("Tutorial done! You are ready to measure real galaxies.", "ok");
      const link = document.createElement("a");
      link.href = (window.WEBROOT || "/") + "zoo/";
      link.textContent = " Start measuring →";
      $("message").appendChild(link);
      return;
    }
    const t = state.practice[state.practiceIndex];
    state.task = { id: t.id, images: t.images, practice: true };
    reset();
    say("Practice galaxy " + (state.practiceIndex + 1) + " of " + state.practice.length + ".");
  }

  async function redraw() {
    if (!state.task) return;
    let r;
    if (tutorial) {
      r = state.step === 1 ? await api("tutorial") : await api("tutorial?step=2&low=" + state.low + "&target=" + state.task.id);
    } else {
      const body = state.step === 1 ? { step: 1 } : { step: 2, low: state.low };
      r = await api("tasks/" + state.task.id + "/standards", { method: "POST", body: body });
    }
    if (!r.ok || !usableStandards(r.data.standards)) {
      say(r.data.message || "Could not draw new standards; try again.", "error");
      return;
    }
    state.standards = r.data.standards;
    if (state.step === 1) state.step1 = r.data.standards;
    state.pos = Math.min(state.pos, state.standards.length);
    render();
    say("New standards drawn at random.", "info");
  }

  function common() {
    return {
      display_mode: state.display, inverted: state.inverted, zoom: state.zoom, angle: state.angle,
      started_at: state.startedAt, finished_at: new Date().toISOString(),
      shown_other_votes: false, shown_model: false,
    };
  }

  async function send(body) {
    if (state.busy) return;
    state.busy = true;
    try {
      if (tutorial) {
        const r = await api("tutorial/check", { method: "POST", body: {
          target: state.task.id, left_standard: body.left_standard || null,
          right_standard: body.right_standard || null, face_on: !!body.face_on } });
        if (!r.ok || !r.data.feedback) { say(r.data.message || "Could not check this answer; try again.", "error"); return; }
        const f = r.data.feedback;
        state.practiceIndex += 1;
        say(f.message, f.correct ? "ok" : "warn");
        setTimeout(nextPractice, 1800);
        return;
      }
      const r = await api("tasks/" + state.task.id + "/submit", { method: "POST", body: Object.assign(common(), body) });
      if (!r.ok || !r.data.measurement) {
        say((r.data.message || "Could not save.") + (r.status === 409 ? "" : " Press the button again to retry."), "error");
        if (r.status === 409) setTimeout(loadTask, 1200);
        return;
      }
      const m = r.data.measurement;
      let text = m.face_on ? "Saved: face-on." : m.rejected && m.inclination === null ? "Saved: rejected." : "Saved: " + m.inclination + "°.";
      if (r.data.feedback) text += " " + r.data.feedback.message;
      say(text, "ok");
      setTimeout(loadTask, 700);
    } finally {
      state.busy = false;
    }
  }

  async function confirmStep1() {
    if (!state.task || !state.standards.length) return;
    const n = neighbours();
    if (!n.left) {
      // Left of 45°: face-on. Step 2 is skipped.
      await send({ face_on: true, right_standard: state.standards[0].id });
      return;
    }
    state.low = 45 + 5 * (state.pos - 1);
    let r;
    if (tutorial) r = await api("tutorial?step=2&low=" + state.low + "&target=" + state.task.id);
    else r = await api("tasks/" + state.task.id + "/standards", { method: "POST", body: { step: 2, low: state.low } });
    if (!r.ok || !usableStandards(r.data.standards)) {
      say(r.data.message || "Could not load step 2; try again.", "error");
      return;
    }
    setStep(2);
    state.standards = r.data.standards;
    const middle = state.standards.findIndex((s) => s.inclination > state.low + 2.5);
    state.pos = middle < 0 ? state.standards.length : middle;
    render();
  }

  function submitStep2() {
    if (!state.task || !state.standards.length) return;
    const n = neighbours();
    if (!n.left && state.standards.length && state.standards[0].inclination <= 45) {
      send({ face_on: true, right_standard: state.step1[0].id });
      return;
    }
    send({ left_standard: n.left ? n.left.id : null, right_standard: n.right ? n.right.id : null, step1_low: state.low });
  }

  $("btn-confirm").addEventListener("click", confirmStep1);
  $("btn-submit").addEventListener("click", submitStep2);
  $("btn-back").addEventListener("click", () => { setStep(1); state.standards = state.step1; state.pos = 1 + (state.low - 45) / 5; render(); });
  $("btn-redraw").addEventListener("click", redraw);
  if (retryButton) retryButton.addEventListener("click", retryNow);
  document.querySelectorAll("button.mode").forEach((b) => b.addEventListener("click", () => { state.display = b.dataset.display; render(); }));
  $("btn-invert").addEventListener("click", () => { state.inverted = !state.inverted; render(); });
  $("btn-zoom-in").addEventListener("click", () => { state.zoom = Math.min(4, +(state.zoom + 0.2).toFixed(2)); render(); });
  $("btn-zoom-out").addEventListener("click", () => { state.zoom = Math.max(0.4, +(state.zoom - 0.2).toFixed(2)); render(); });
  $("btn-rot-left").addEventListener("click", () => { state.angle = (state.angle - 15) % 360; render(); });
  $("btn-rot-right").addEventListener("click", () => { state.angle = (state.angle + 15) % 360; render(); });
  if ($("btn-skip")) $("btn-skip").addEventListener("click", async () => {
    if (!state.task) return;
    await api("tasks/" + state.task.id + "/skip", { method: "POST" });
    say("Skipped.", "info");
    loadTask();
  });
  if ($("btn-reject")) $("btn-reject").addEventListener("click", () => {
    const reasons = Array.from(document.querySelectorAll("input[name=reason]:checked")).map((c) => c.value);
    if (!state.task) return;
    if (!reasons.length) { say("Tick at least one reason to reject.", "warn"); return; }
    send({ reasons: reasons, note: $("note").value });
  });

  if (tutorial) loadPractice(); else loadTask();
})();
