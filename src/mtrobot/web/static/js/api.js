// The pages' one way to call the JSON API: the session cookie, the CSRF header on writes, plain errors.

function cookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || "Something went wrong; please try again.");
    this.status = status;
    this.problem = problem;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = cookie("mtrobot_csrf");
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch("/api/v1" + path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (_) {
    throw new ApiError(0, { detail: "The platform cannot be reached. Check your connection and try again." });
  }
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) throw new ApiError(response.status, data || { detail: `The server answered ${response.status}.` });
  return data;
}

// The signed-in trader, or a trip to the sign-in page.
export async function signedIn() {
  try {
    return await api("GET", "/auth/me");
  } catch (e) {
    if (e.status === 401) location.replace("/signin?next=" + encodeURIComponent(location.pathname));
    throw e;
  }
}

export async function signOut() {
  try { await api("POST", "/auth/logout"); } finally { location.replace("/signin"); }
}

// Shows a problem beside the inputs it names (data-error-for="field"), the rest in the form's notice.
export function showProblem(form, error) {
  form.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; });
  form.querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
  const notice = form.querySelector(".notice");
  const fields = (error.problem && error.problem.errors) || [];
  let placed = 0;
  for (const { field, message } of fields) {
    const name = String(field).split(".").pop();
    const slot = form.querySelector(`[data-error-for="${name}"]`);
    if (slot) {
      slot.textContent = message;
      const input = form.querySelector(`[name="${name}"]`);
      if (input) input.classList.add("invalid");
      placed++;
    }
  }
  if (notice) notice.textContent = placed === fields.length && placed > 0 ? "" : error.message;
}

export function clearProblem(form) {
  form.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; });
  form.querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
  const notice = form.querySelector(".notice");
  if (notice) notice.textContent = "";
}

export function money(value, currency) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "–";
  const text = Number(value).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  return currency ? `${text} ${currency}` : text;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
