/* Galaxy Inclination Zoo: the measuring page and the tutorial quiz (vanilla JS, no build step, no inline code).
 *
 * The target is shown large (#target); the standards run in a strip (#strip) with a gap ("slot") between
 * each two. The volunteer puts the target into a gap: tap/click the gap, drag the target (pointer events:
 * mouse, pen and touch; zoo-drag.js) or use the A/D keys. Nothing is placed at first, so nothing anchors the answer.
 * Step 1: nine standards 45–85°, the gaps are the 5° intervals 45–50 … 85–90. Step 2: standards 1° apart.
 * Face-on has one way: the "Face-on (< 45°)" button, with a confirmation. Feedback stays until "Next"/Enter.
 * Any image opens full size in a lightbox on click or long-press.
 * A failed or empty answer never leaves the page on "Loading…": it says what happened, offers Retry, and
 * tries again by itself with exponential backoff (never sooner than the server's Retry-After; zoo-retry.js).
 */
(function () {
  "use strict";
  const root = document.getElementById("zoo");
  if (!root) return;
  const webroot = root.dataset.webroot || window.WEBROOT || "/";
  const base = webroot + "zoo/api/";
  const tutorial = root.dataset.mode === "tutorial";
  const $ = (id) => document.getElementById(id);
  const strip = $("strip");
  const state = {
    task: null, step: 1, standards: [], pos: null, low: null, step1: [],
    display: root.dataset.display || "colour", inverted: root.dataset.inverted === "1",
    zoom: parseFloat(root.dataset.zoom || "1") || 1, angle: 0, startedAt: null,
    questions: [], question: 0, busy: false, showingFeedback: false,
  };
  const retry = window.ZooRetry(say, $("btn-retry"));

  async function api(path, options) {
    const opts = Object.assign({ method: "GET", headers: {} }, options || {});
    if (opts.body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(opts.body);
    }
    let reply;
    try {
      reply = await window.InclinetHttp.requestJSON(base + path, opts);
    } catch (e) {
      return { ok: false, status: 0, retryAfter: 0, data: { message: "The server cannot be reached." } };
    }
    const response = reply.response;
    let data = reply.body;
    if (!data || typeof data !== "object") {
      data = { message: response.ok ? "Unexpected answer from the server." : "The server answered " + response.status + "." };
    }
    return { ok: response.ok, status: response.status, data: data, retryAfter: window.InclinetHttp.retryAfterSeconds(response) };
  }

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

  function imageFilter() {
    const filters = [];
    if (state.display !== "colour") filters.push("grayscale(1)");  // a missing band falls back to colour
    if (state.inverted) filters.push("invert(1)");
    return filters.join(" ");
  }

  function styleImage(img, scale, angle) {
    img.style.filter = imageFilter();
    img.style.transform = "scale(" + scale + ") rotate(" + angle + "deg)";
  }

  // ---- the large target ------------------------------------------------------------------------------

  function renderTarget() {
    const figure = $("target");
    const img = $("target-img");
    if (!state.task) {
      figure.classList.add("empty");
      img.removeAttribute("src");
      return;
    }
    figure.classList.remove("empty");
    const src = imageFor(state.task.images);
    if (img.getAttribute("src") !== src) img.src = src;
    styleImage(img, state.zoom, state.angle);
  }

  // ---- the strip: standards and the gaps between them ---------------------------------------------------

  // The first gap (left of the first standard) is offered only where it is not "face-on": face-on has its own button.
  function firstSlot() {
    if (!state.standards.length) return 0;
    return state.standards[0].inclination <= 45 ? 1 : 0;
  }

  function slotLabel(p) {
    const left = state.standards[p - 1], right = state.standards[p];
    if (!left) return "left of " + degrees(right);
    if (!right) return "right of " + degrees(left);
    return "between " + degrees(left) + " and " + degrees(right);
  }

  function slot(p) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "slot" + (state.pos === p ? " placed" : "");
    b.dataset.pos = p;
    b.setAttribute("aria-label", "Place the target " + slotLabel(p));
    if (state.pos === p && state.task) {
      const mini = document.createElement("img");
      mini.className = "mini";
      mini.alt = "";
      mini.src = imageFor(state.task.images);
      mini.draggable = false;
      styleImage(mini, 1, state.angle);
      b.appendChild(mini);
    }
    return b;
  }

  function standardPanel(s, i) {
    const fig = document.createElement("figure");
    fig.className = "panel std";
    fig.dataset.index = i;
    fig.dataset.id = s.id;
    fig.dataset.inclination = s.inclination;
    const frame = document.createElement("div");
    frame.className = "frame";
    const img = document.createElement("img");
    img.alt = "standard " + degrees(s);
    img.src = imageFor(s.images);
    img.draggable = false;
    styleImage(img, s.scale || 1, s.angle || 0);
    frame.appendChild(img);
    fig.appendChild(frame);
    const label = document.createElement("figcaption");
    label.className = "label";
    label.textContent = degrees(s);
    fig.appendChild(label);
    return fig;
  }

  function render() {
    strip.innerHTML = "";
    state.standards = Array.isArray(state.standards) ? state.standards : [];
    renderTarget();
    if (state.task && state.standards.length) {
      const first = firstSlot();
      if (first === 0) strip.appendChild(slot(0));
      state.standards.forEach((s, i) => {
        strip.appendChild(standardPanel(s, i));
        strip.appendChild(slot(i + 1));
      });
    }
    document.querySelectorAll("button.mode").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.display === state.display)));
    $("btn-invert").setAttribute("aria-pressed", String(state.inverted));
    $("view-state").textContent = "zoom " + state.zoom.toFixed(1) + "×, " + state.angle + "°";
    describe();
    updateButtons();
  }

  function describe() {
    let text = "";
    if (state.task && state.standards.length) {
      text = state.pos === null ? "Not placed yet: tap a gap between two standards, or drag the target there."
        : "Placed " + slotLabel(state.pos) + ".";
    }
    $("position").textContent = text;
    $("position").dataset.pos = state.pos === null ? "" : String(state.pos);
  }

  function updateButtons() {
    const placed = state.pos !== null && !!state.task && !state.showingFeedback;
    $("btn-confirm").disabled = !placed;
    $("btn-submit").disabled = !placed;
    $("btn-faceon").disabled = !state.task || state.showingFeedback;
  }

  function place(p) {
    if (!state.task || state.showingFeedback) return;
    state.pos = Math.max(firstSlot(), Math.min(state.standards.length, p));
    render();
  }

  function move(delta) {
    if (!state.task || state.showingFeedback) return;
    if (state.pos === null) { place(Math.ceil(state.standards.length / 2)); return; }
    place(state.pos + delta);
  }

  // ---- pointer: tap a gap, drag the target, long-press or click any image to magnify ------------------

  window.ZooDrag.attach({
    strip: strip,
    target: $("target-img"),
    canStart: () => Boolean(state.task) && !state.showingFeedback,
    imageUrl: () => imageFor(state.task.images),
    onMagnify: () => openLightbox(imageFor(state.task.images), "Target galaxy"),
    onDrop: (over) => { if (over !== null && over >= firstSlot()) place(over); else render(); },
    onCancel: render,
  });

  strip.addEventListener("click", (e) => {
    const gap = e.target.closest(".slot");
    if (gap && !gap.classList.contains("placed")) { place(parseInt(gap.dataset.pos, 10)); return; }
    const std = e.target.closest(".panel.std");
    if (std) {
      const s = state.standards[parseInt(std.dataset.index, 10)];
      if (s) openLightbox(imageFor(s.images), "Standard " + degrees(s));
    }
  });
  // Long-press a standard on a touch screen: the same lightbox (a tap already opens it; this stops the menu).
  strip.addEventListener("contextmenu", (e) => { if (e.target.closest(".panel.std, .slot")) e.preventDefault(); });

  // ---- lightbox -------------------------------------------------------------------------------------------

  function openLightbox(src, caption) {
    if (!src) return;
    const box = $("lightbox");
    const img = $("lightbox-img");
    img.src = src;
    img.style.filter = imageFilter();
    $("lightbox-caption").textContent = caption + " (full resolution)";
    box.hidden = false;
    $("lightbox-close").focus();
  }

  function closeLightbox() { $("lightbox").hidden = true; }
  $("lightbox-close").addEventListener("click", closeLightbox);
  $("lightbox").addEventListener("click", (e) => { if (e.target === $("lightbox")) closeLightbox(); });

  // ---- steps ----------------------------------------------------------------------------------------------

  const step1Text = $("step-text").textContent;

  function setStep(step) {
    state.step = step;
    $("step-label").textContent = "Step " + step + " of 2.";
    $("btn-confirm").hidden = step !== 1;
    $("btn-faceon").hidden = step !== 1;
    $("btn-back").hidden = step !== 2;
    $("btn-submit").hidden = step !== 2;
    $("faceon-confirm").hidden = true;
    $("step-text").textContent = step === 2
      ? "Now place it among standards 1° apart. The result is the mean of its two neighbours."
      : step1Text;
  }

  function hideFeedback() {
    state.showingFeedback = false;
    $("feedback").hidden = true;
    $("feedback").className = "zoo-feedback";
  }

  function showFeedback(lines, grade, nextLabel, onNext) {
    state.showingFeedback = true;
    const box = $("feedback");
    box.className = "zoo-feedback " + (grade || "saved");
    $("feedback-text").textContent = "";
    lines.forEach((line, i) => {
      const p = document.createElement("p");
      p.textContent = line;
      if (i === 0) p.className = "headline";
      $("feedback-text").appendChild(p);
    });
    $("btn-next").textContent = nextLabel;
    $("btn-next").onclick = null;
    nextAction = onNext;
    box.hidden = false;
    updateButtons();
    $("btn-next").focus();
  }

  let nextAction = null;
  $("btn-next").addEventListener("click", () => { if (nextAction) { const go = nextAction; nextAction = null; go(); } });

  function reset() {
    state.startedAt = new Date().toISOString();
    state.angle = 0;
    hideFeedback();
    setStep(1);
    state.standards = state.step1;
    state.pos = null;  // no starting position: nothing to anchor on
    root.dataset.task = state.task ? String(state.task.id) : "";
    document.querySelectorAll("input[name=reason]").forEach((c) => { c.checked = false; });
    if ($("note")) $("note").value = "";
    if ($("reject")) $("reject").open = false;
    render();
  }

  function clearTask() {
    state.task = null; state.standards = []; state.pos = null; hideFeedback(); setStep(1); render();
  }

  // ---- counters -------------------------------------------------------------------------------------------

  const sessionKey = "zoo-session-count-" + (root.dataset.user || "");

  function showCounters() {
    if (!$("count-session")) return;
    const session = parseInt(sessionStorage.getItem(sessionKey) || "0", 10) || 0;
    $("count-session").textContent = String(session);
    $("count-total").textContent = String((parseInt(root.dataset.total || "0", 10) || 0));
  }

  function countOne() {
    const session = (parseInt(sessionStorage.getItem(sessionKey) || "0", 10) || 0) + 1;
    sessionStorage.setItem(sessionKey, String(session));
    root.dataset.total = String((parseInt(root.dataset.total || "0", 10) || 0) + 1);
    showCounters();
  }

  // ---- measuring real galaxies ---------------------------------------------------------------------------

  async function loadTask() {
    retry.cancel();
    hideFeedback();
    say("Loading…");
    try {
      const r = await api("tasks/next", { method: "POST" });
      if (r.ok && usableTask(r.data.task)) {
        state.task = r.data.task;
        state.step1 = r.data.task.standards;
        reset();
        retry.succeeded();
        say("");
        return;
      }
      clearTask();
      if (r.status === 404) retry.later(loadTask, r.data.message || "No galaxy is waiting right now.", "info", r.retryAfter, true);
      else if (r.ok) retry.later(loadTask, "The server sent an incomplete task.", "error", 0, false);
      else retry.later(loadTask, r.data.message || "The server answered " + r.status + ".", "error", r.retryAfter, false);
    } catch (e) {
      clearTask();
      retry.later(loadTask, "This galaxy could not be shown.", "error", 0, false);
    }
  }

  function common() {
    return {
      display_mode: state.display, inverted: state.inverted, zoom: state.zoom, angle: state.angle,
      started_at: state.startedAt, finished_at: new Date().toISOString(),
      shown_other_votes: false, shown_model: false,
    };
  }

  function reasonLabel(value) {
    const input = document.querySelector("input[name=reason][value='" + value + "']");
    return input && input.parentElement ? input.parentElement.textContent.trim() : value;
  }

  function savedLine(m, reasons) {
    if (m.face_on) return "Saved: face-on (< 45°).";
    if (m.inclination === null || m.inclination === undefined) {
      return "Saved: rejected (" + (reasons || []).map(reasonLabel).join(", ") + ").";
    }
    return "Saved: " + m.inclination + "°.";
  }

  async function send(body) {
    if (state.busy) return;
    state.busy = true;
    try {
      if (tutorial) { await sendPractice(body); return; }
      const r = await api("tasks/" + state.task.id + "/submit", { method: "POST", body: Object.assign(common(), body) });
      if (!r.ok || !r.data.measurement) {
        say((r.data.message || "Could not save.") + (r.status === 409 ? "" : " Press the button again to retry."), "error");
        if (r.status === 409) showFeedback([r.data.message || "This galaxy cannot take your answer."], "off", "Next galaxy", loadTask);
        return;
      }
      countOne();
      const m = r.data.measurement;
      const lines = [savedLine(m, body.reasons)];
      let grade = "saved";
      if (r.data.feedback) {
        lines.push(r.data.feedback.message);
        grade = r.data.feedback.grade;
      } else {
        lines.push("Thank you! Its answer is not known yet: yours helps find it.");
      }
      say("");
      showFeedback(lines, grade, "Next galaxy", loadTask);
    } finally {
      state.busy = false;
    }
  }

  async function confirmStep1() {
    if (!state.task || state.pos === null || state.showingFeedback) return;
    state.low = 45 + 5 * (state.pos - 1);
    let r;
    if (tutorial) r = await api("tutorial?step=2&low=" + state.low);
    else r = await api("tasks/" + state.task.id + "/standards", { method: "POST", body: { step: 2, low: state.low } });
    if (!r.ok || !usableStandards(r.data.standards)) {
      say(r.data.message || "Could not load step 2; try again.", "error");
      return;
    }
    setStep(2);
    state.standards = r.data.standards;
    state.pos = null;
    render();
  }

  function submitStep2() {
    if (!state.task || state.pos === null || state.showingFeedback) return;
    const left = state.standards[state.pos - 1] || null, right = state.standards[state.pos] || null;
    send({ left_standard: left ? left.id : null, right_standard: right ? right.id : null, step1_low: state.low });
  }

  function askFaceOn() {
    if (!state.task || state.showingFeedback) return;
    $("faceon-confirm").hidden = false;
    $("btn-faceon-yes").focus();
  }

  function sendFaceOn() {
    $("faceon-confirm").hidden = true;
    send({ face_on: true, right_standard: state.step1[0].id });
  }

  async function redraw() {
    if (!state.task || state.showingFeedback) return;
    let r;
    if (tutorial) r = await api(state.step === 1 ? "tutorial?step=1" : "tutorial?step=2&low=" + state.low);
    else r = await api("tasks/" + state.task.id + "/standards", { method: "POST", body: state.step === 1 ? { step: 1 } : { step: 2, low: state.low } });
    if (!r.ok || !usableStandards(r.data.standards)) {
      say(r.data.message || "Could not draw new standards; try again.", "error");
      return;
    }
    state.standards = r.data.standards;
    if (state.step === 1) state.step1 = r.data.standards;
    if (state.pos !== null) state.pos = Math.min(state.pos, state.standards.length);
    render();
    say("New standards drawn at random.", "info");
  }

  // ---- the tutorial quiz ---------------------------------------------------------------------------------

  async function loadQuiz(restart) {
    retry.cancel();
    say("Loading…");
    const r = restart ? await api("tutorial", { method: "POST" }) : await api("tutorial");
    if (!r.ok || !Array.isArray(r.data.questions) || !usableStandards(r.data.standards)) {
      clearTask();
      retry.later(() => loadQuiz(restart), r.data.message || "The tutorial could not be loaded.", "error", r.retryAfter, false);
      return;
    }
    retry.succeeded();
    say("");
    state.questions = r.data.questions;
    state.step1 = r.data.standards;
    if (r.data.summary) { showSummary(r.data.summary); return; }
    $("tutorial-summary").hidden = true;
    $("quiz").hidden = false;
    nextQuestion();
  }

  function nextQuestion() {
    const open = state.questions.findIndex((q) => !q.answered);
    if (open < 0) return;
    state.question = open;
    const q = state.questions[open];
    state.task = { id: "q" + open, images: q.images, practice: true };
    reset();
    $("quiz-progress").textContent = "Question " + (open + 1) + " of " + state.questions.length + ".";
  }

  async function sendPractice(body) {
    const r = await api("tutorial/check", { method: "POST", body: {
      question: state.question, left_standard: body.left_standard || null, right_standard: body.right_standard || null,
      face_on: !!body.face_on, reasons: body.reasons || [] } });
    if (!r.ok || !r.data.feedback) { say(r.data.message || "Could not check this answer; try again.", "error"); return; }
    state.questions[state.question].answered = true;
    const f = r.data.feedback;
    const last = !!r.data.summary;
    showFeedback([f.message], f.grade, last ? "See your result" : "Next question",
      last ? () => showSummary(r.data.summary) : nextQuestion);
  }

  function showSummary(summary) {
    hideFeedback();
    state.task = null;
    $("quiz").hidden = true;
    const box = $("tutorial-summary");
    box.hidden = false;
    box.className = "tutorial-summary " + (summary.passed ? "passed" : "failed");
    const median = summary.median_error === null ? "–" : summary.median_error + "°";
    $("summary-title").textContent = summary.passed ? "Tutorial passed" : "Not passed yet";
    $("summary-text").textContent = summary.passed
      ? "Your median error was " + median + " (at most " + summary.threshold + "° needed), the face-on galaxy and the odd image were right. You are ready to measure real galaxies."
      : "This attempt still needs " + summary.missing.join("; ") + ". Read the feedback below and the field guide, then try again with new galaxies.";
    const list = $("summary-list");
    list.textContent = "";
    summary.questions.forEach((q) => {
      const li = document.createElement("li");
      li.className = q.correct ? "right" : "wrong";
      li.textContent = "Question " + (q.index + 1) + ": " + q.message;
      list.appendChild(li);
    });
    $("summary-start").hidden = !summary.passed;
    $("btn-retry-tutorial").hidden = summary.passed;
    $("btn-practise-again").hidden = !summary.passed;
  }

  // ---- controls -------------------------------------------------------------------------------------------

  document.addEventListener("keydown", (e) => {
    if (e.target && (e.target.tagName === "TEXTAREA" || e.target.tagName === "INPUT")) return;
    if (e.key === "Escape") { closeLightbox(); $("faceon-confirm").hidden = true; return; }
    if (!$("lightbox").hidden) return;
    if (e.key === "Enter") {
      if (state.showingFeedback) { e.preventDefault(); $("btn-next").click(); return; }
      if (e.target && e.target.tagName === "BUTTON") return;  // Enter on a focused button clicks it
      if (state.step === 1 && state.pos !== null) { e.preventDefault(); confirmStep1(); }
      else if (state.step === 2 && state.pos !== null) { e.preventDefault(); submitStep2(); }
      return;
    }
    if (e.key === "a" || e.key === "A" || e.key === "ArrowLeft") { move(-1); e.preventDefault(); }
    if (e.key === "d" || e.key === "D" || e.key === "ArrowRight") { move(1); e.preventDefault(); }
  });
  $("btn-left").addEventListener("click", () => move(-1));
  $("btn-right").addEventListener("click", () => move(1));
  $("btn-confirm").addEventListener("click", confirmStep1);
  $("btn-submit").addEventListener("click", submitStep2);
  $("btn-faceon").addEventListener("click", askFaceOn);
  $("btn-faceon-yes").addEventListener("click", sendFaceOn);
  $("btn-faceon-no").addEventListener("click", () => { $("faceon-confirm").hidden = true; });
  $("btn-back").addEventListener("click", () => {
    setStep(1); state.standards = state.step1; state.pos = 1 + (state.low - 45) / 5; render();
  });
  $("btn-redraw").addEventListener("click", redraw);
  $("btn-magnify").addEventListener("click", () => { if (state.task) openLightbox(imageFor(state.task.images), "Target galaxy"); });
  document.querySelectorAll("button.mode").forEach((b) => b.addEventListener("click", () => { state.display = b.dataset.display; render(); }));
  $("btn-invert").addEventListener("click", () => { state.inverted = !state.inverted; render(); });
  $("btn-zoom-in").addEventListener("click", () => { state.zoom = Math.min(4, +(state.zoom + 0.2).toFixed(2)); render(); });
  $("btn-zoom-out").addEventListener("click", () => { state.zoom = Math.max(0.4, +(state.zoom - 0.2).toFixed(2)); render(); });
  $("btn-rot-left").addEventListener("click", () => { state.angle = (state.angle - 15) % 360; render(); });
  $("btn-rot-right").addEventListener("click", () => { state.angle = (state.angle + 15) % 360; render(); });
  if ($("btn-skip")) $("btn-skip").addEventListener("click", async () => {
    if (!state.task || state.showingFeedback) return;
    await api("tasks/" + state.task.id + "/skip", { method: "POST" });
    say("Skipped.", "info");
    loadTask();
  });
  if ($("btn-reject")) $("btn-reject").addEventListener("click", () => {
    const reasons = Array.from(document.querySelectorAll("input[name=reason]:checked")).map((c) => c.value);
    if (!state.task || state.showingFeedback) return;
    if (!reasons.length) { say("Tick at least one reason to reject.", "warn"); return; }
    send({ reasons: reasons, note: $("note") ? $("note").value : "" });
  });
  if ($("btn-start-quiz")) $("btn-start-quiz").addEventListener("click", () => {
    $("lessons").hidden = true;
    loadQuiz(false);
  });
  if ($("btn-retry-tutorial")) $("btn-retry-tutorial").addEventListener("click", () => loadQuiz(true));
  if ($("btn-practise-again")) $("btn-practise-again").addEventListener("click", () => loadQuiz(true));

  showCounters();
  if (!tutorial) loadTask();
  else clearTask();
})();
