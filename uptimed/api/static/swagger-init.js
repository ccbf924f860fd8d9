// Starts Swagger UI on /docs. A file, not an inline script: the page's CSP allows only 'self'.
// URLs are relative to the page, so the docs keep working behind a reverse proxy's prefix.
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // No badge from the public validator: uptimed runs where there is no internet.
  validatorUrl: null,
});
