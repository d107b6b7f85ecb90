// The site's URL prefix for the page scripts, read from <html data-webroot> (no inline script: CSP).
window.WEBROOT = document.documentElement.dataset.webroot || "/";
