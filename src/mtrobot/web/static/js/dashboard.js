// The dashboard: up to three accounts, live from /api/v1/stream (the latest snapshot at once, then each
// newer one), with the trader's actions going through the JSON API.
import { api, el, money, showProblem, clearProblem, signedIn, signOut } from "/static/js/api.js";

const CONNECTION_WORDS = {
  connected: ["Connected", "connected"],
  connecting: ["Connecting to the broker…", "problem"],
  maintenance: ["Broker maintenance: trading resumes after it", "problem"],
  backoff: ["Connection to the broker lost; retrying", "problem"],
  quarantined: ["Stopped for safety", "stopped"],
  stopped: ["Agent stopped", "stopped"],
};
const ROBOT_WORDS = { starting: "Starting", running: "Running", paused: "Paused", refused: "Cannot run", stopped: "Stopped" };
const cards = new Map();
let socket = null;
let retry = 0;
let reconnectTimer = null;

document.getElementById("signout").addEventListener("click", signOut);

// Every time on the page is the trader's own (the browser's time zone, named beside each list); the broker's
// server clock, which MT5 terminals show, is in a trade's tooltip.
const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "local";
const TIME_FORMAT = new Intl.DateTimeFormat([], { year: "numeric", month: "short", day: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit" });

function fmtTime(value) {
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : TIME_FORMAT.format(d);
}

const AXIS_FORMATS = {
  second: new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }),
  minute: new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" }),
  day: new Intl.DateTimeFormat([], { month: "short", day: "numeric" }),
};

function axisLabel(unit, value) {
  const format = AXIS_FORMATS[unit] || (unit === "millisecond" ? AXIS_FORMATS.second : AXIS_FORMATS.minute);
  return format.format(new Date(value));
}

function tradeTime(trade) {
  const server = `broker server time ${trade.time}`;
  if (!trade.ts) return el("td", { class: "wide", title: "your time zone not known yet" }, `${trade.time} (server)`);
  return el("td", { class: "wide", title: server }, el("time", { datetime: trade.ts }, fmtTime(trade.ts)));
}

function signed(cell, value, currency) {
  cell.textContent = money(value, currency);
  cell.classList.toggle("pos", Number(value) > 0);
  cell.classList.toggle("neg", Number(value) < 0);
}

function numberOrNull(input) {
  return input.value.trim() === "" ? null : Number(input.value);
}

function fillTable(table, rows, emptyText, columns) {
  const body = table.querySelector("tbody");
  if (!rows.length) {
    body.replaceChildren(el("tr", {}, el("td", { class: "empty", colspan: columns }, emptyText)));
    return;
  }
  body.replaceChildren(...rows);
}

// --- one account's card -----------------------------------------------------------------------------

class AccountCard {
  constructor(account) {
    this.account = account;
    this.snapshot = null;
    this.portfolio = null;
    this.points = [];
    this.activityTimer = null;
    this.lastActivity = 0;
    const node = document.getElementById("account-card").content.firstElementChild.cloneNode(true);
    node.id = "account-" + account.id;
    node.dataset.account = account.id;
    this.node = node;
    this.q = (s) => node.querySelector(s);
    this.q(".label").textContent = account.label;
    for (const zone of node.querySelectorAll(".zone")) zone.textContent = `times in your time zone (${ZONE})`;
    this.q(".new-order").addEventListener("submit", (e) => this.placeOrder(e));
    const form = this.q(".new-order");
    form.kind.addEventListener("change", () => { this.q(".pending-price").hidden = form.kind.value === "market"; });
    this.q(".kill-switch").addEventListener("click", () => this.control("flatten",
      "Stop every robot of this account and close all its positions now?"));
    this.q(".pause-all").addEventListener("click", () => this.control("pause"));
    this.q(".resume-all").addEventListener("click", () => this.control("resume"));
  }

  async load() {
    const [details, portfolio, equity] = await Promise.all([
      api("GET", `/accounts/${this.account.id}`),
      api("GET", `/accounts/${this.account.id}/portfolio`),
      api("GET", `/accounts/${this.account.id}/equity?hours=24`),
    ]);
    this.q(".where").textContent = `${details.server} · login ${details.login}${details.company ? " · " + details.company : ""}`;
    this.portfolio = portfolio;
    this.points = equity.map((p) => ({ t: Date.parse(p.ts), equity: p.equity, balance: p.balance }));
    this.drawChart();
    this.renderRobots();
    await this.loadActivity();
  }

  // Called for each newer snapshot of this account.
  show(snapshot) {
    this.snapshot = snapshot;
    const c = snapshot.currency;
    const [words, kind] = CONNECTION_WORDS[snapshot.connection] || [snapshot.connection, "problem"];
    const badge = this.q(".connection");
    badge.textContent = words;
    badge.className = "badge connection " + kind;
    badge.dataset.state = snapshot.connection;
    this.q(".balance").textContent = money(snapshot.balance, c);
    this.q(".equity").textContent = money(snapshot.equity, c);
    signed(this.q(".profit"), snapshot.profit, c);
    this.q(".margin-level").textContent = snapshot.margin > 0 ? `${Number(snapshot.margin_level).toFixed(0)} %` : "no margin used";
    this.q(".free-margin").textContent = money(snapshot.free_margin, c);
    this.node.dataset.seq = snapshot.seq;
    this.renderPositions(snapshot);
    this.renderOrders(snapshot);
    this.renderTrades(snapshot);
    this.renderRobots();
    this.addPoint(snapshot);
    this.scheduleActivity();
  }

  renderPositions(s) {
    const rows = s.positions.map((p) => el("tr", { "data-ticket": p.ticket },
      el("td", {}, p.symbol), el("td", {}, p.type === "buy" ? "Buy" : "Sell"), el("td", {}, p.volume),
      el("td", { class: "wide" }, p.price_open), el("td", {}, p.price_current),
      (() => { const td = el("td"); signed(td, p.profit); return td; })(),
      el("td", {}, el("button", { type: "button", class: "small secondary close-position",
        onclick: (e) => this.closePosition(p, e.target) }, "Close"))));
    fillTable(this.q(".positions"), rows, "No open positions.", 7);
  }

  renderOrders(s) {
    const rows = s.orders.map((o) => el("tr", { "data-ticket": o.ticket },
      el("td", {}, o.symbol), el("td", {}, String(o.type).replaceAll("_", " ")), el("td", {}, o.volume),
      el("td", {}, o.price_open), el("td", { class: "wide" }, o.sl || "–"), el("td", { class: "wide" }, o.tp || "–"),
      el("td", {}, el("button", { type: "button", class: "small secondary cancel-order",
        onclick: (e) => this.cancelOrder(o, e.target) }, "Cancel"))));
    fillTable(this.q(".orders"), rows, "No pending orders.", 7);
  }

  renderTrades(s) {
    const rows = s.recent_trades.map((t) => el("tr", { "data-deal": t.deal },
      tradeTime(t), el("td", {}, t.symbol), el("td", {}, t.side === "buy" ? "Buy" : "Sell"),
      el("td", {}, t.volume), el("td", {}, t.price),
      (() => { const td = el("td"); signed(td, t.profit); return td; })()));
    fillTable(this.q(".trades"), rows, "No trades yet.", 6);
  }

  renderRobots() {
    const allocations = (this.portfolio && this.portfolio.robots) || [];
    const live = (this.snapshot && this.snapshot.robots) || [];
    const rows = allocations.map((a, i) => {
      const seen = live.find((r) => r.robot === a.robot && r.symbol === a.symbol && r.timeframe === a.timeframe);
      let state = !this.portfolio.active ? "Portfolio not started" : !a.enabled ? "Paused by you"
        : seen ? ROBOT_WORDS[seen.state] || seen.state : "Waiting for the agent";
      if (seen && seen.reason) state += `: ${seen.reason}`;
      const button = el("button", { type: "button", class: "small secondary toggle-robot",
        onclick: (e) => this.toggleRobot(i, e.target) }, a.enabled ? "Pause" : "Resume");
      return el("tr", {}, el("td", {}, `${a.robot.replaceAll("_", " ")} ${a.symbol} ${a.timeframe}`),
        el("td", { class: "robot-state" }, state), el("td", {}, button));
    });
    fillTable(this.q(".robots"), rows, "No robots in the portfolio.", 3);
  }

  // --- chart ---

  addPoint(s) {
    if (s.connection !== "connected" || !s.equity) return; // not connected: the money fields are not known
    const t = Date.parse(s.ts);
    const last = this.points[this.points.length - 1];
    if (last && t - last.t < 5000 && last.balance === s.balance) {
      Object.assign(last, { equity: s.equity }); // the line's end follows the live equity
    } else {
      this.points.push({ t, equity: s.equity, balance: s.balance });
    }
    const since = Date.now() - 24 * 3600 * 1000;
    while (this.points.length && this.points[0].t < since) this.points.shift();
    this.drawChart();
  }

  drawChart() {
    if (typeof Chart === "undefined") return;
    const radius = this.points.length < 3 ? 3 : 0; // a lone point is a dot, not an invisible line
    const data = {
      datasets: [
        { label: "Equity", data: this.points.map((p) => ({ x: p.t, y: p.equity })), borderColor: "#1f6feb", backgroundColor: "#1f6feb", pointRadius: radius, borderWidth: 2 },
        { label: "Balance", data: this.points.map((p) => ({ x: p.t, y: p.balance })), borderColor: "#5d6b7c", backgroundColor: "#5d6b7c", pointRadius: radius, borderWidth: 1, stepped: true },
      ],
    };
    const first = this.points.length ? this.points[0].t : Date.now();
    const last = this.points.length ? this.points[this.points.length - 1].t : first;
    // A time axis: Chart.js picks the unit (seconds, minutes, hours) from the span, so no label repeats; each
    // label is written as the lists write times (the browser's locale and time zone).
    const x = { type: "time", min: first, max: Math.max(last, first + 60000),
      time: { tooltipFormat: "d MMM HH:mm:ss" },
      ticks: { maxTicksLimit: 6, maxRotation: 0, callback(value) { return axisLabel(this._unit, value); } } };
    if (this.chart) {
      this.chart.options.scales.x = x;
      this.chart.data = data;
      this.chart.update("none");
      return;
    }
    this.chart = new Chart(this.q(".equity-chart"), {
      type: "line", data,
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
        scales: { x },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      },
    });
  }

  // --- activity ---

  scheduleActivity() {
    if (this.activityTimer) return;
    const wait = Math.max(0, 1500 - (Date.now() - this.lastActivity));
    this.activityTimer = setTimeout(() => { this.activityTimer = null; this.loadActivity(); }, wait);
  }

  async loadActivity() {
    this.lastActivity = Date.now();
    let lines;
    try { lines = await api("GET", `/accounts/${this.account.id}/activity?limit=50`); } catch (_) { return; }
    const list = this.q(".activity");
    if (!lines.length) return;
    lines.reverse(); // the API gives the newest first; the log reads in time order, newest at the bottom
    list.replaceChildren(...lines.map((l) => el("li", { "data-kind": l.kind }, el("time", { datetime: l.ts }, fmtTime(l.ts)), l.message)));
    list.scrollTop = list.scrollHeight;
  }

  // --- actions ---

  async placeOrder(event) {
    event.preventDefault();
    const form = event.target;
    clearProblem(form);
    const side = event.submitter ? event.submitter.value : "buy";
    const kind = form.kind.value;
    const notice = form.querySelector(".notice");
    // A pending order is buy/sell + limit/stop at a price; an empty or unreadable box is sent as no value,
    // so the API's own check names the field ("Price is required ...") beside it.
    const body = { symbol: form.symbol.value.trim().toUpperCase(),
      order_type: kind === "market" ? side : `${side}_${kind}`, volume: numberOrNull(form.volume) };
    if (kind !== "market") body.price = numberOrNull(form.price);
    try {
      const order = await api("POST", `/accounts/${this.account.id}/orders`, body);
      const what = `${side === "buy" ? "Buy" : "Sell"}${kind === "market" ? "" : " " + kind} order ${order.order_id} sent`;
      notice.textContent = kind === "market" ? `${what}; it shows under open positions once filled.`
        : `${what}; it shows under pending orders once the broker accepts it.`;
      this.scheduleActivity();
    } catch (error) {
      showProblem(form, error);
    }
  }

  async closePosition(position, button) {
    button.disabled = true;
    const notice = this.q(".new-order .notice");
    try {
      await api("POST", `/accounts/${this.account.id}/positions/${position.ticket}/close`, { symbol: position.symbol });
      notice.textContent = `Closing ${position.symbol} position ${position.ticket}…`;
      this.scheduleActivity();
    } catch (error) {
      notice.textContent = error.message;
      button.disabled = false;
    }
  }

  async cancelOrder(order, button) {
    button.disabled = true;
    const notice = this.q(".new-order .notice");
    try {
      // By the broker's ticket: every pending order the snapshot lists has one, also one whose comment
      // names no order id (a long id's hashed tag, or an order placed in the MT5 terminal).
      await api("DELETE", `/accounts/${this.account.id}/pending-orders/${order.ticket}`);
      notice.textContent = `Cancelling pending order ${order.ticket} (${order.symbol})…`;
      this.scheduleActivity();
    } catch (error) {
      notice.textContent = error.message;
      button.disabled = false;
    }
  }

  async toggleRobot(index, button) {
    button.disabled = true;
    const robots = this.portfolio.robots.map((r, i) => (i === index ? { ...r, enabled: !r.enabled } : r));
    try {
      this.portfolio = await api("PUT", `/accounts/${this.account.id}/portfolio`,
        { active: this.portfolio.active, robots, risk: this.portfolio.risk });
      this.renderRobots();
    } catch (error) {
      this.q(".control-result").textContent = error.message;
      button.disabled = false;
    }
  }

  async control(cmd, question) {
    if (question && !confirm(question)) return;
    const result = this.q(".control-result");
    result.classList.remove("bad");
    result.textContent = cmd === "flatten" ? "Stopping and closing everything…" : "Sending…";
    try {
      // The kill switch: robots stop first (nothing new opens), then every position is closed.
      if (cmd === "flatten") await api("POST", `/accounts/${this.account.id}/control`, { cmd: "pause" });
      const answer = await api("POST", `/accounts/${this.account.id}/control`, { cmd });
      result.textContent = answer && answer.message ? answer.message : "Done.";
      result.classList.toggle("bad", answer && answer.ok === false);
    } catch (error) {
      result.textContent = error.message;
      result.classList.add("bad");
    }
    this.scheduleActivity();
  }
}

// --- the live stream --------------------------------------------------------------------------------

function setAccounts(accounts) {
  const list = document.getElementById("accounts");
  for (const [id, card] of cards) {
    if (!accounts.some((a) => a.id === id)) { card.node.remove(); cards.delete(id); }
  }
  for (const account of accounts) {
    if (cards.has(account.id)) continue;
    const card = new AccountCard(account);
    cards.set(account.id, card);
    list.append(card.node);
    card.load().catch((e) => { card.q(".reason").textContent = e.message; });
  }
  document.getElementById("add-account").hidden = accounts.length >= 3;
  const waiting = document.getElementById("waiting");
  waiting.hidden = accounts.length > 0;
  if (!accounts.length) location.replace("/onboarding");
}

function connectStream() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/api/v1/stream`);
  socket.addEventListener("open", () => { retry = 0; document.getElementById("offline").hidden = true; });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "hello") setAccounts(message.accounts);
    else if (message.type === "snapshot") {
      const card = cards.get(message.account);
      if (card && (!card.snapshot || message.seq > card.snapshot.seq)) card.show(message.snapshot);
    } else if (message.type === "error" && message.code !== "origin") {
      document.getElementById("offline").textContent = message.detail;
    }
  });
  socket.addEventListener("close", (event) => {
    if (event.code === 4401) { location.replace("/signin?next=/dashboard"); return; }
    document.getElementById("offline").hidden = false;
    const wait = Math.min(10000, 500 * 2 ** retry++) * (0.5 + Math.random() / 2);
    reconnectTimer = setTimeout(() => { reconnectTimer = null; connectStream(); }, wait);
  });
}

window.addEventListener("online", () => {
  if (reconnectTimer) { clearTimeout(reconnectTimer); reconnectTimer = null; connectStream(); }
});

async function main() {
  const me = await signedIn();
  document.getElementById("who").textContent = me.name || me.email;
  connectStream();
}

main().catch((e) => {
  document.getElementById("waiting").textContent = e.message;
});
