// Shared helpers of the replay pages: the access token, the JSON API, formatting.

const params = new URLSearchParams(location.search);

/** The service's access token, if the page was opened with ?token=. */
export const token = params.get("token") || "";

/** `path` with ?token= added when the page has one (links, <audio src>, downloads). */
export function withToken(path) {
  if (!token) return path;
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** Call the JSON API (Bearer token in a header); resolves to parsed JSON, or null for 204. */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "the coach service cannot be reached (is it still running?)");
  }
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) throw new ApiError(res.status, errorText(res.status, data));
  return data;
}

function errorText(status, data) {
  const d = data && data.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d) && d.length) {
    return d.map((e) => (e.loc ? e.loc.filter((x) => x !== "body").join(".") + ": " : "") + e.msg).join("; ");
  }
  return "the service answered " + status;
}

/** 75.3 -> "1:15.3" (tenths), or "1:15" with whole=true (rounded). Hours when needed. */
export function fmtTime(t, whole = false) {
  if (typeof t !== "number" || !isFinite(t)) return "—";
  t = Math.max(0, t);
  if (whole) t = Math.round(t);  // as the command line rounds lengths (3:57.6 -> 3:58)
  const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60);
  const s = t % 60;
  const ss = whole ? String(Math.floor(s)).padStart(2, "0") : s.toFixed(1).padStart(4, "0");
  return (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + ss;
}

const dateFmt = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
});

/** An ISO date-time in the reader's local time ("21 Nov 2025, 14:03"). */
export function fmtDate(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : dateFmt.format(d);
}

export function scoreClass(score) {
  if (typeof score !== "number") return "none";
  return score >= 80 ? "good" : score >= 60 ? "fair" : "poor";
}

// A call with no words has no score: it held no speech (the QA rubric does not score it).
export function scoreText(score, nWords) {
  if (typeof score === "number") return score.toFixed(score % 1 ? 1 : 0);
  return nWords === 0 ? "no speech" : "—";
}

export const SEVERITIES = ["info", "nudge", "warn"];
export function sevClass(sev) { return "sev-" + (SEVERITIES.includes(sev) ? sev : "nudge"); }

/** document.createElement with attributes/properties and children, for safe DOM building. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
