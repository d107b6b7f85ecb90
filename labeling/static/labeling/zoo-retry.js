/* Galaxy Inclination Zoo: trying a failed or empty load again by itself, with exponential backoff (never
 * sooner than the server's Retry-After), a countdown in the page's message line and a Retry button.
 *
 * ZooRetry(say, button) → { later(loader, text, kind, retryAfter, emptyQueue), cancel(), succeeded() };
 * zoo.js (loaded after this file) calls it once. An empty queue backs off more slowly than an error.
 */
(function () {
  "use strict";
  const RETRY = { baseS: 2, maxS: 60, emptyBaseS: 30, emptyMaxS: 300 };

  function ZooRetry(say, button) {
    const retry = { timer: null, tick: null, attempt: 0, loader: null };

    function cancel() {
      clearTimeout(retry.timer);
      clearInterval(retry.tick);
      retry.timer = retry.tick = null;
      if (button) button.hidden = true;
    }

    function later(loader, text, kind, retryAfter, emptyQueue) {
      cancel();
      const baseS = emptyQueue ? RETRY.emptyBaseS : RETRY.baseS;
      const maxS = emptyQueue ? RETRY.emptyMaxS : RETRY.maxS;
      const waitS = Math.ceil(Math.max(Math.min(maxS, baseS * Math.pow(2, retry.attempt)), Math.min(retryAfter || 0, 600)));
      retry.attempt += 1;
      retry.loader = loader;
      let left = waitS;
      const show = () => say(text + " Trying again in " + left + " s.", kind);
      show();
      retry.tick = setInterval(() => { left = Math.max(1, left - 1); show(); }, 1000);
      retry.timer = setTimeout(() => { cancel(); loader(); }, waitS * 1000);
      if (button) button.hidden = false;
    }

    function now() {
      const loader = retry.loader;
      cancel();
      if (loader) loader();
    }

    if (button) button.addEventListener("click", now);
    return { later: later, cancel: cancel, succeeded: () => { retry.attempt = 0; } };
  }

  window.ZooRetry = ZooRetry;
})();
