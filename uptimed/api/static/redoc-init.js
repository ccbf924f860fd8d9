// Starts ReDoc on /redoc. A file, not an inline script: the page's CSP allows only 'self'.
Redoc.init("openapi.json", {}, document.getElementById("redoc"));
