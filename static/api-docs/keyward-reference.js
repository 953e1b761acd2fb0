// Starts Swagger UI on Keyward's OpenAPI document. A file, not an inline script, so that the
// page runs under the application's Content-Security-Policy (script-src 'self'). Without the
// standalone preset: its top bar draws an SVG logo with an inline <style>, which that policy
// (style-src 'self') refuses, and its URL field would invite loading other documents.
"use strict";
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // No badge from validator.swagger.io: the page fetches nothing from elsewhere.
    validatorUrl: null,
    displayRequestDuration: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
