// The onboarding wizard: connect an MT5 account (or open a simulated demo one), choose robots, start.
import { api, clearProblem, el, showProblem, signedIn, signOut } from "/static/js/api.js";

const TIMEFRAMES = ["M1", "M5", "M15", "M30", "H1", "H4", "D1"];
const steps = ["connect", "robots", "start"];
let account = null;
let chosen = [];

document.getElementById("signout").addEventListener("click", signOut);

function show(step) {
  for (const name of steps) {
    document.getElementById("step-" + name).hidden = name !== step;
    const badge = document.querySelector(`.steps [data-step="${name}"]`);
    badge.className = name === step ? "current" : steps.indexOf(name) < steps.indexOf(step) ? "done" : "";
  }
  document.querySelectorAll(".account-name").forEach((n) => { n.textContent = account ? account.label : ""; });
  window.scrollTo(0, 0);
}

// --- step 1: connect --------------------------------------------------------------------------------

const connect = document.getElementById("connect");
const demo = document.getElementById("demo");
const touched = new Set();
let checkTimer = null;
let checkRound = 0;

async function checkDraft() {
  const draft = {};
  for (const name of touched) {
    const value = connect[name].value;
    draft[name] = name === "server" ? value.trim() : value;
  }
  if (!Object.keys(draft).length) return;
  const round = ++checkRound;
  let verdict;
  try {
    verdict = await api("POST", "/accounts/validate", draft);
  } catch (error) {
    if (round === checkRound) showProblem(connect, error);
    return;
  }
  if (round !== checkRound) return; // an older answer arriving late must not overwrite a newer one
  for (const [name, check] of Object.entries(verdict.fields)) {
    connect.querySelector(`[data-error-for="${name}"]`).textContent = check.valid ? "" : check.message;
    connect[name].classList.toggle("invalid", !check.valid);
    connect[name].classList.toggle("valid", check.valid);
  }
}

for (const name of ["server", "login", "password"]) {
  connect[name].addEventListener("input", () => {
    touched.add(name);
    clearTimeout(checkTimer);
    checkTimer = setTimeout(checkDraft, 250);
  });
  connect[name].addEventListener("blur", () => { touched.add(name); checkDraft(); });
}

connect.addEventListener("submit", async (event) => {
  event.preventDefault();
  ["server", "login", "password"].forEach((n) => touched.add(n));
  clearProblem(connect);
  const button = document.getElementById("connect-button");
  const testing = document.getElementById("testing");
  const login = connect.login.value.trim();
  if (!/^[0-9]+$/.test(login)) { await checkDraft(); return; }
  button.disabled = true;
  testing.hidden = false;
  testing.textContent = "Testing the connection to your broker; this takes a few seconds…";
  try {
    account = await api("POST", "/accounts", {
      server: connect.server.value.trim(), login: Number(login),
      password: connect.password.value, label: connect.label.value.trim(),
    });
    connect.password.value = "";
    await toRobots();
  } catch (error) {
    showProblem(connect, error);
  } finally {
    button.disabled = false;
    testing.hidden = true;
  }
});

demo.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearProblem(demo);
  const button = document.getElementById("open-demo");
  button.disabled = true;
  button.textContent = "Opening your demo account…";
  try {
    account = await api("POST", "/brokers/demo-accounts", {
      deposit: Number(demo.deposit.value), leverage: Number(demo.leverage.value),
    });
    await toRobots();
  } catch (error) {
    showProblem(demo, error);
  } finally {
    button.disabled = false;
    button.textContent = "Open demo account";
  }
});

async function loadServers() {
  const servers = await api("GET", "/brokers/servers");
  const list = document.getElementById("servers");
  list.replaceChildren(...servers.map((s) => el("option", { value: s.name }, s.company || s.name)));
  if (servers.some((s) => s.simulated)) {
    demo.hidden = false;
    document.getElementById("connect-title").textContent = "Or connect an MT5 account you have at a broker";
  }
}

// --- step 2: robots ---------------------------------------------------------------------------------

function paramInput(robot, p) {
  const id = `p-${robot.name}-${p.name}`;
  const attrs = { id, name: p.name, "data-type": p.type };
  let input;
  if (p.type === "bool") {
    input = el("input", { ...attrs, type: "checkbox", checked: p.default === true });
  } else if (p.type === "choice") {
    input = el("select", attrs, p.choices.map((c) => el("option", { value: c, selected: c === p.default }, c)));
  } else {
    const step = p.type === "int" ? "1" : "any";
    input = el("input", { ...attrs, type: p.type === "text" ? "text" : "number", step, value: p.default ?? "" });
  }
  return el("div", {}, el("label", { for: id }, p.name.replaceAll("_", " ")), input,
    el("p", { class: "hint" }, p.description));
}

function robotBlock(robot, index) {
  const use = el("input", { type: "checkbox", id: `use-${robot.name}`, name: "use", checked: index === 0 });
  return el("div", { class: "choice", "data-robot": robot.name },
    el("label", { for: use.id }, use, robot.name.replaceAll("_", " ")),
    el("p", { class: "hint" }, robot.description),
    el("div", { class: "row" },
      el("div", {}, el("label", { for: `sym-${robot.name}` }, "Symbol"),
        el("input", { id: `sym-${robot.name}`, name: "symbol", value: "EURUSD", autocomplete: "off" })),
      el("div", {}, el("label", { for: `tf-${robot.name}` }, "Timeframe"),
        el("select", { id: `tf-${robot.name}`, name: "timeframe" },
          TIMEFRAMES.map((t) => el("option", { value: t, selected: t === "H1" }, t)))),
      el("div", {}, el("label", { for: `lots-${robot.name}` }, "Lots per order"),
        el("input", { id: `lots-${robot.name}`, name: "lots", type: "number", step: "0.01", min: "0.01", value: "0.01" }))),
    el("details", {}, el("summary", {}, "Parameters (the defaults suit most traders)"),
      robot.parameters.map((p) => paramInput(robot, p))));
}

async function toRobots() {
  show("robots");
  history.replaceState(null, "", `/onboarding?account=${encodeURIComponent(account.id)}`);
  const robots = await api("GET", "/robots");
  document.getElementById("robot-list").replaceChildren(...robots.map(robotBlock));
}

function readAllocation(block) {
  const params = {};
  block.querySelectorAll("[data-type]").forEach((input) => {
    const type = input.dataset.type;
    if (type === "bool") params[input.name] = input.checked;
    else if (type === "int") params[input.name] = input.value === "" ? input.value : Math.trunc(Number(input.value));
    else if (type === "float") params[input.name] = input.value === "" ? input.value : Number(input.value);
    else params[input.name] = input.value;
  });
  const pick = (name) => block.querySelector(`[name="${name}"]`);
  return {
    robot: block.dataset.robot, symbol: pick("symbol").value.trim().toUpperCase(),
    timeframe: pick("timeframe").value, enabled: true, params,
    sizing: { mode: "fixed_lots", lots: Number(pick("lots").value) },
  };
}

const robotsForm = document.getElementById("robots");
robotsForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearProblem(robotsForm);
  chosen = [...robotsForm.querySelectorAll(".choice")]
    .filter((b) => b.querySelector('[name="use"]').checked).map(readAllocation);
  try {
    await api("PUT", `/accounts/${account.id}/portfolio`, { active: false, robots: chosen });
  } catch (error) {
    showProblem(robotsForm, error);
    return;
  }
  const summary = chosen.length
    ? el("ul", {}, chosen.map((a) => el("li", {}, `${a.robot.replaceAll("_", " ")} on ${a.symbol} ${a.timeframe}, ${a.sizing.lots} lots per order`)))
    : el("p", {}, "No robots: you will trade by hand from the dashboard.");
  document.getElementById("summary").replaceChildren(summary);
  show("start");
});

// --- step 3: start ----------------------------------------------------------------------------------

document.getElementById("back").addEventListener("click", () => show("robots"));
document.getElementById("start").addEventListener("click", async (event) => {
  const error = document.getElementById("start-error");
  error.textContent = "";
  event.target.disabled = true;
  try {
    await api("PUT", `/accounts/${account.id}/portfolio`, { active: true, robots: chosen });
    location.assign(`/dashboard#${encodeURIComponent(account.id)}`);
  } catch (e) {
    error.textContent = e.message;
    event.target.disabled = false;
  }
});

// --- entry ------------------------------------------------------------------------------------------

async function main() {
  await signedIn();
  const wanted = new URLSearchParams(location.search).get("account");
  if (wanted) {
    try {
      account = await api("GET", `/accounts/${encodeURIComponent(wanted)}`);
      await toRobots();
      return;
    } catch (_) { account = null; }
  }
  const accounts = await api("GET", "/accounts");
  if (accounts.length >= 3) {
    connect.querySelector(".notice").textContent =
      "You already have 3 accounts, the most one trader can connect. Remove one on the dashboard to add another.";
  }
  show("connect");
  await loadServers();
}

main().catch((e) => console.error(e));
