/* Galaxy Inclination Zoo: dragging the target into the strip (pointer events: mouse, pen and touch).
 *
 * ZooDrag.attach(options) wires the gestures; zoo.js (loaded after this file) says what they mean:
 *   strip, target        the strip element and the large target image
 *   canStart()           whether a gesture may start now (a task is shown, no feedback open)
 *   imageUrl()           the target's image, for the ghost that follows the pointer
 *   onMagnify()          a long press without moving, or a tap on the target: open the lightbox
 *   onDrop(slot)         the drag ended over gap `slot` (null: over no gap)
 *   onCancel()           the browser cancelled the gesture
 * A placed target (".slot.placed" in the strip) can be dragged again to another gap.
 */
(function () {
  "use strict";
  const LONG_PRESS_MS = 500;
  const DRAG_START_PX = 6;

  function attach(options) {
    const strip = options.strip;
    const drag = { active: false, moved: false, startX: 0, startY: 0, ghost: null, timer: null, source: null, over: null };

    // The gap under a point: a gap itself, or the nearer side of a standard.
    function slotAt(x, y) {
      const el = document.elementFromPoint(x, y);
      if (!el) return null;
      const gap = el.closest(".slot");
      if (gap && strip.contains(gap)) return parseInt(gap.dataset.pos, 10);
      const std = el.closest(".panel.std");
      if (std && strip.contains(std)) {
        const rect = std.getBoundingClientRect();
        const index = parseInt(std.dataset.index, 10);
        return index + (x > rect.left + rect.width / 2 ? 1 : 0);
      }
      return null;
    }

    function startPointer(e, source) {
      if (!options.canStart() || (e.button !== undefined && e.button > 0)) return;
      drag.active = true; drag.moved = false; drag.source = source;
      drag.startX = e.clientX; drag.startY = e.clientY; drag.over = null;
      clearTimeout(drag.timer);
      drag.timer = setTimeout(() => {  // long-press without moving: magnify
        if (drag.active && !drag.moved) { endDrag(); options.onMagnify(); }
      }, LONG_PRESS_MS);
      if (source.setPointerCapture && e.pointerId !== undefined) {
        try { source.setPointerCapture(e.pointerId); } catch (err) { /* synthetic events have no capture */ }
      }
      e.preventDefault();
    }

    function movePointer(e) {
      if (!drag.active) return;
      const far = Math.abs(e.clientX - drag.startX) + Math.abs(e.clientY - drag.startY) > DRAG_START_PX;
      if (!drag.moved && far) {
        drag.moved = true;
        clearTimeout(drag.timer);
        drag.ghost = document.createElement("img");
        drag.ghost.className = "drag-ghost";
        drag.ghost.alt = "";
        drag.ghost.src = options.imageUrl();
        document.body.appendChild(drag.ghost);
        document.body.classList.add("dragging");
      }
      if (!drag.moved) return;
      drag.ghost.style.left = (e.clientX - 32) + "px";
      drag.ghost.style.top = (e.clientY - 32) + "px";
      drag.ghost.hidden = true;  // so elementFromPoint sees what is under it
      const over = slotAt(e.clientX, e.clientY);
      drag.ghost.hidden = false;
      strip.querySelectorAll(".slot.over").forEach((s) => s.classList.remove("over"));
      if (over !== null) {
        const gap = strip.querySelector(".slot[data-pos='" + over + "']");
        if (gap) gap.classList.add("over");
      }
      drag.over = over;
    }

    function endDrag() {
      drag.active = false;
      clearTimeout(drag.timer);
      if (drag.ghost) drag.ghost.remove();
      drag.ghost = null;
      document.body.classList.remove("dragging");
    }

    function endPointer(e) {
      if (!drag.active) return;
      const moved = drag.moved, over = drag.over, source = drag.source;
      endDrag();
      if (moved) {
        // Re-render after the touch sequence has ended: removing the touched element before its touchend
        // leaves Chromium's gesture state open, and the next tap then gets no click.
        setTimeout(() => options.onDrop(over), 30);
      } else if (source === options.target) {
        options.onMagnify();
      }
      e.preventDefault();
    }

    options.target.addEventListener("pointerdown", (e) => startPointer(e, options.target));
    strip.addEventListener("pointerdown", (e) => {
      const mini = e.target.closest(".slot.placed");
      if (mini) startPointer(e, mini);
    });
    document.addEventListener("pointermove", movePointer);
    document.addEventListener("pointerup", endPointer);
    document.addEventListener("pointercancel", () => { endDrag(); options.onCancel(); });
  }

  window.ZooDrag = { attach: attach };
})();
