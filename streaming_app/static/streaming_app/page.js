/**
 * What the client reads of the page it runs in (`location`, `document.cookie`);
 * outside a page (Node) each function leaves its input as it is.
 * @module
 */

/**
 * `/ws/` or `http://host/ws/` in a page becomes the `ws:`/`wss:` URL of that page's origin.
 * @param {string | URL} url
 * @returns {string}
 */
export function resolveWebSocketUrl(url) {
  const text = String(url);
  if (/^wss?:/i.test(text) || typeof location === "undefined") return text;
  const resolved = new URL(text, location.href);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  else if (resolved.protocol === "https:") resolved.protocol = "wss:";
  return resolved.href;
}

/**
 * `url` made absolute against the page's URL; as it is outside a page.
 * @param {string | URL} url
 * @returns {string}
 */
export function resolvePageUrl(url) {
  return typeof location === "undefined" ? String(url) : new URL(String(url), location.href).href;
}

/**
 * The page's CSRF token (the `csrftoken` cookie) for a request to `url`, only
 * if that URL is of the page's own origin; undefined otherwise or outside a page.
 * @param {string | URL} url
 * @returns {string | undefined}
 */
export function pageCsrfToken(url) {
  if (typeof location === "undefined") return undefined;
  if (new URL(String(url), location.href).origin !== location.origin) return undefined;
  return readCookie("csrftoken");
}

/**
 * The value of a cookie of the page (`document.cookie`), or undefined.
 * @param {string} name
 * @returns {string | undefined}
 */
export function readCookie(name) {
  if (typeof document === "undefined" || !document.cookie) return undefined;
  for (const part of document.cookie.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return decodeURIComponent(value.join("="));
  }
  return undefined;
}
