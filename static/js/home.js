// The start page's "Find a galaxy" box: resolves a name or position through the catalogue API.
document.getElementById("resolve-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = document.getElementById("resolve-q").value;
  const response = await fetch(window.WEBROOT + "api/catalog/resolve?q=" + encodeURIComponent(q));
  const body = await response.json();
  document.getElementById("resolve-out").textContent = JSON.stringify(body, null, 2);
});
