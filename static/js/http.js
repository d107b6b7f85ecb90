// One way for the page scripts to call the site's JSON endpoints (loaded by base.html before them; no inline
// script: CSP). Sends the session cookie, adds Django's CSRF header to anything but GET and HEAD, and reads
// the answer as JSON. Each page turns the result into its own words.
(function () {
  "use strict";

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  // Resolves to { response, body } (body: the parsed JSON, or null when the answer is not JSON); rejects with
  // an Error whose status is 0 when the server cannot be reached.
  async function requestJSON(url, options) {
    const opts = Object.assign({ method: "GET" }, options || {});
    opts.headers = Object.assign({}, opts.headers);
    if (!["GET", "HEAD"].includes(opts.method.toUpperCase())) opts.headers["X-CSRFToken"] = csrfToken();
    opts.credentials = "same-origin";
    let response;
    try { response = await fetch(url, opts); } catch (e) { throw Object.assign(new Error("unreachable"), { status: 0 }); }
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    return { response: response, body: body };
  }

  // Seconds to wait before retrying, from Retry-After (seconds or an HTTP date); 0 without one.
  function retryAfterSeconds(response) {
    const value = response.headers.get("Retry-After");
    if (!value) return 0;
    const seconds = Number(value);
    if (Number.isFinite(seconds)) return Math.max(0, seconds);
    const when = Date.parse(value);
    return Number.isFinite(when) ? Math.max(0, (when - Date.now()) / 1000) : 0;
  }

  window.InclinetHttp = { csrfToken: csrfToken, requestJSON: requestJSON, retryAfterSeconds: retryAfterSeconds };
})();
