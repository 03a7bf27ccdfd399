// The ferrograph ui page: threads, a thread's checkpoint tree, a checkpoint (state, diff,
// writes, interrupts, graph) and, when the server has a graph, the actions. It talks only to
// the JSON API of the server that served it and never builds HTML from data (textContent only).
"use strict";

const TYPE = "$type";
const PAGE = 50;
const state = { info: null, offset: 0, total: 0, thread: null, rows: [], selected: null, view: null };

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, options) {
  const response = await fetch(path, options);
  if (response.status === 401) {
    showView("login");
    throw new Error("not logged in");
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function post(path, body) {
  return fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Ferrograph-CSRF": state.info.csrf_token },
    body: JSON.stringify(body),
  });
}

function showView(name) {
  for (const id of ["threads-view", "thread-view", "login"]) $(id).hidden = id !== name;
}

function shortTime(ts) {
  return ts ? ts.replace("T", " ").slice(0, 19) : "";
}

// ---- typed values: {"$type": NAME, "value": ...} marks what JSON has no type for

function isTyped(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) && TYPE in v;
}

function plain(v) {
  if (Array.isArray(v)) return v.map(plain);
  if (v === null || typeof v !== "object") return v;
  if (!isTyped(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  if (v[TYPE] === "dict") return Object.fromEntries(v.value.map(([k, x]) => [typeof k === "string" ? k : JSON.stringify(plain(k)), plain(x)]));
  return plain(v.value);
}

function pathKey(path) {
  return JSON.stringify(path);
}

// A collapsible tree of a typed value; `marks` maps a path key to added/changed.
function renderValue(value, path, marks, depth) {
  const mark = marks && marks.get(pathKey(path));
  const cls = mark ? ` diff-${mark}` : "";
  if (isTyped(value)) {
    const badge = el("span", { class: "type", title: "a typed value" }, value[TYPE]);
    const inner = value.value;
    if (inner !== null && typeof inner === "object" && value[TYPE] !== "dict") {
      const node = renderValue(inner, path, marks, depth);
      const summary = node.querySelector("summary");
      if (summary) summary.prepend(badge);
      else node.prepend(badge);
      if (mark) node.classList.add(`diff-${mark}`);
      return node;
    }
    if (value[TYPE] === "dict") {
      const details = el("details", depth < 2 ? { open: "" } : {}, el("summary", { class: cls.trim() }, badge, el("span", { class: "count" }, `{${inner.length} keys}`)));
      inner.forEach(([k, x]) => details.append(el("div", { class: "row" }, el("span", { class: "key" }, JSON.stringify(plain(k))), ": ", renderValue(x, path.concat([k]), marks, depth + 1))));
      return details;
    }
    return el("span", { class: cls.trim() }, badge, leaf(inner));
  }
  if (Array.isArray(value) || (value !== null && typeof value === "object")) {
    const entries = Array.isArray(value) ? value.map((x, i) => [i, x]) : Object.entries(value);
    const count = Array.isArray(value) ? `[${entries.length} items]` : `{${entries.length} keys}`;
    const details = el("details", depth < 2 ? { open: "" } : {}, el("summary", { class: cls.trim() }, el("span", { class: "count" }, count)));
    for (const [k, x] of entries) {
      const key = el("span", { class: "key" }, Array.isArray(value) ? String(k) : JSON.stringify(k));
      const childPath = path.concat([k]);
      const childMark = marks && marks.get(pathKey(childPath));
      details.append(el("div", { class: `row${childMark ? ` diff-${childMark}` : ""}`, "data-path": pathKey(childPath) }, key, ": ", renderValue(x, childPath, marks, depth + 1)));
    }
    return details;
  }
  const node = leaf(value);
  if (mark) node.classList.add(`diff-${mark}`);
  return node;
}

function leaf(v) {
  if (typeof v === "string") return el("span", { class: "str" }, JSON.stringify(v));
  if (typeof v === "number") return el("span", { class: "num" }, String(v));
  return el("span", { class: "lit" }, JSON.stringify(v));
}

function showJson(target, value, marks) {
  target.replaceChildren(renderValue(value, [], marks, 0));
}

// ---- threads

async function loadThreads() {
  showView("threads-view");
  const params = new URLSearchParams({ offset: state.offset, limit: PAGE });
  const search = $("search").value.trim();
  const metadata = $("metadata").value.trim();
  if (search) params.set("search", search);
  if (metadata) params.set("metadata", metadata);
  const page = await api(`/api/threads?${params}`);
  state.total = page.total;
  const body = $("threads").querySelector("tbody");
  body.replaceChildren(...page.threads.map((t) => el("tr", {
    "data-thread": t.thread_id,
    onclick: () => { location.hash = `#/thread/${encodeURIComponent(t.thread_id)}`; },
  },
    el("td", {}, el("a", { href: `#/thread/${encodeURIComponent(t.thread_id)}` }, t.thread_id)),
    el("td", { class: "num" }, t.checkpoints),
    el("td", {}, shortTime(t.last_activity)),
    el("td", { class: "num" }, t.last_step === null ? "" : t.last_step),
    el("td", {}, t.last_source || ""),
    el("td", { class: t.status ? `status-${t.status}` : "" }, t.status || ""),
  )));
  const last = Math.min(page.offset + page.threads.length, page.total);
  $("page-info").textContent = page.total ? `${page.offset + 1}–${last} of ${page.total} threads` : "no threads";
  $("prev").disabled = page.offset === 0;
  $("next").disabled = last >= page.total;
}

// ---- a thread: the checkpoint tree

async function loadThread(threadId, checkpointId) {
  showView("thread-view");
  if (state.thread !== threadId || !state.rows.length || (checkpointId && !state.rows.some((r) => r.checkpoint_id === checkpointId))) {
    state.thread = threadId;
    $("thread-title").textContent = threadId;
    const history = await api(`/api/threads/${encodeURIComponent(threadId)}/history`);
    state.rows = history.checkpoints;
    drawTree();
  }
  const root = state.rows.filter((r) => r.checkpoint_ns === "");
  const target = checkpointId || (root.length ? root[root.length - 1].checkpoint_id : null);
  if (target) await selectCheckpoint(target);
}

// Lanes: a line of checkpoints keeps its parent's lane; each fork opens the next free lane.
function layout(rows) {
  const byId = new Map(rows.map((r) => [`${r.checkpoint_ns}\u0000${r.checkpoint_id}`, r]));
  const lane = new Map();
  let lanes = 0;
  const roots = rows.filter((r) => !r.parent_checkpoint_id || !byId.has(`${r.checkpoint_ns}\u0000${r.parent_checkpoint_id}`));
  const stack = roots.map((r) => [r, null]).reverse();
  while (stack.length) {
    const [row, inherited] = stack.pop();
    const mine = inherited === null ? lanes++ : inherited;
    lane.set(row, mine);
    const children = row.children.map((id) => byId.get(`${row.checkpoint_ns}\u0000${id}`)).filter(Boolean);
    for (let i = children.length - 1; i >= 0; i--) stack.push([children[i], i === 0 ? mine : null]);
  }
  return { lane, lanes, byId };
}

function drawTree() {
  const tree = $("tree");
  const rows = state.rows.slice().sort((a, b) => (a.checkpoint_id < b.checkpoint_id ? 1 : a.checkpoint_id > b.checkpoint_id ? -1 : 0));
  const { lane, lanes, byId } = layout(state.rows);
  const ROW = 24, LANE = 18, TOP = 14;
  const y = new Map(rows.map((r, i) => [r, TOP + i * ROW]));
  const x = (r) => 12 + lane.get(r) * LANE;
  const textX = 12 + lanes * LANE + 8;
  const edges = svg("g", {});
  const nodes = svg("g", {});
  for (const row of rows) {
    const parent = row.parent_checkpoint_id && byId.get(`${row.checkpoint_ns}\u0000${row.parent_checkpoint_id}`);
    if (parent) {
      const [x1, y1, x2, y2] = [x(parent), y.get(parent), x(row), y.get(row)];
      const d = x1 === x2 ? `M${x1},${y1} L${x2},${y2}` : `M${x1},${y1} C${x1},${y1 - ROW / 2} ${x2},${y1 - ROW / 2} ${x2},${Math.min(y1 - ROW, y2)} L${x2},${y2}`;
      edges.append(svg("path", { class: "edge", d }));
    }
    const ran = row.ran && row.ran.length ? row.ran.join(", ") : (row.writes.filter((c) => !c.startsWith("__") && !c.includes(":")).join(", ") || "-");
    const label = `${row.step === null ? "" : String(row.step).padStart(3)} ${(row.source || "?").padEnd(6)} ${ran}`;
    const group = svg("g", { class: "node", "data-checkpoint-id": row.checkpoint_id, "data-fork": row.fork ? "1" : "0", "data-testid": "tree-node" },
      svg("rect", { class: "band", x: 0, y: y.get(row) - ROW / 2, width: "100%", height: ROW }),
      svg("circle", { class: row.source || "loop", cx: x(row), cy: y.get(row), r: 6 }),
      svg("text", { x: textX, y: y.get(row) + 4 }, label),
      svg("text", { x: textX + 290, y: y.get(row) + 4, class: "dim" }, `${shortTime(row.ts).slice(11)}${row.checkpoint_ns ? "  ns " + row.checkpoint_ns : ""}${row.pending_writes ? `  +${row.pending_writes} pending` : ""}`),
      svg("title", {}, `${row.checkpoint_id}\nstep ${row.step}, ${row.source}${row.fork ? ", starts a branch" : ""}\nran: ${ran}\nwrote: ${row.writes.join(", ") || "-"}\n${row.ts}`),
    );
    group.addEventListener("click", () => {
      location.hash = `#/thread/${encodeURIComponent(state.thread)}/${encodeURIComponent(row.checkpoint_id)}${row.checkpoint_ns ? "?ns=" + encodeURIComponent(row.checkpoint_ns) : ""}`;
    });
    nodes.append(group);
  }
  tree.replaceChildren(edges, nodes);
  tree.setAttribute("width", Math.max(textX + 470, 400));
  tree.setAttribute("height", TOP + rows.length * ROW);
  tree.setAttribute("data-branches", String(lanes));
}

// ---- a checkpoint

function rowOf(checkpointId) {
  return state.rows.find((r) => r.checkpoint_id === checkpointId);
}

async function selectCheckpoint(checkpointId, ns) {
  const row = rowOf(checkpointId);
  ns = ns !== undefined ? ns : (row ? row.checkpoint_ns : "");
  const view = await api(`/api/threads/${encodeURIComponent(state.thread)}/checkpoints/${encodeURIComponent(checkpointId)}?ns=${encodeURIComponent(ns)}`);
  state.selected = checkpointId;
  state.view = view;
  for (const node of $("tree").querySelectorAll(".node")) node.classList.toggle("selected", node.dataset.checkpointId === checkpointId);
  $("checkpoint").hidden = false;
  const meta = plain(view.metadata) || {};
  $("checkpoint-title").textContent = view.checkpoint_id;
  $("checkpoint-facts").textContent = [
    `step ${meta.step}`, meta.source, shortTime(view.ts) + " UTC",
    view.checkpoint_ns ? `namespace ${view.checkpoint_ns}` : null,
    view.parent_checkpoint_id ? `parent ${view.parent_checkpoint_id}` : "no parent",
    view.status,
  ].filter(Boolean).join(" · ");
  showJson($("meta"), view.metadata);
  showJson($("internal"), view.internal);
  $("writes").replaceChildren(...(view.pending_writes.length ? view.pending_writes.map((task) => el("div", { class: "task" },
    el("div", {}, `task ${task.task_id}`),
    ...task.writes.map((w) => el("div", { class: "row json" }, el("span", { class: "key" }, w.channel), ": ", renderValue(w.value, [], null, 1))),
  )) : [el("p", { class: "hint" }, "no pending writes")]));
  const troubles = [];
  if (view.interrupts.length) troubles.push(el("div", {}, el("h4", {}, "interrupts"), renderValue(view.interrupts, [], null, 0)));
  if (view.errors.length) troubles.push(el("div", {}, el("h4", {}, "errors"), renderValue(view.errors, [], null, 0)));
  $("interrupts").replaceChildren(...(troubles.length ? troubles : [el("p", { class: "hint" }, "none")]));
  $("interrupts-section").open = troubles.length > 0;
  fillDiffChoices(view);
  await showDiff();
  await drawGraph(view.next);
  fillActions(view);
}

function fillDiffChoices(view) {
  const select = $("diff-against");
  const options = [];
  if (view.parent_checkpoint_id) options.push(el("option", { value: view.parent_checkpoint_id }, `parent (${view.parent_checkpoint_id})`));
  for (const r of state.rows) {
    if (r.checkpoint_ns === view.checkpoint_ns && r.checkpoint_id !== view.checkpoint_id && r.checkpoint_id !== view.parent_checkpoint_id) {
      options.push(el("option", { value: r.checkpoint_id }, `step ${r.step} ${r.source} (${r.checkpoint_id})`));
    }
  }
  select.replaceChildren(...options);
  select.disabled = !options.length;
}

async function showDiff() {
  const view = state.view;
  const other = $("diff-against").value;
  for (const node of $("tree").querySelectorAll(".node")) node.classList.toggle("compared", node.dataset.checkpointId === other);
  if (!other) {
    showJson($("state"), view.values);
    $("diff").replaceChildren(el("p", { class: "hint" }, "the first checkpoint: nothing to compare with"));
    return;
  }
  const params = new URLSearchParams({ a: other, b: view.checkpoint_id, ns: view.checkpoint_ns });
  const result = await api(`/api/threads/${encodeURIComponent(state.thread)}/diff?${params}`);
  const marks = new Map(result.changes.filter((c) => c.kind !== "removed").map((c) => [pathKey(c.path), c.kind]));
  showJson($("state"), view.values, marks);
  if (!result.changes.length) {
    $("diff").replaceChildren(el("p", { class: "hint", "data-testid": "no-changes" }, "no change in the state"));
    return;
  }
  $("diff").replaceChildren(el("table", {},
    el("thead", {}, el("tr", {}, el("th", {}, "path"), el("th", {}, "change"), el("th", {}, "before"), el("th", {}, "after"))),
    el("tbody", {}, ...result.changes.map((c) => el("tr", { class: `diff-${c.kind}`, "data-testid": "diff-row" },
      el("td", {}, c.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${p}`)).join("") || "(state)"),
      el("td", { class: "kind" }, c.kind),
      el("td", { class: "json" }, c.kind === "added" ? "" : renderValue(c.before, [], null, 2)),
      el("td", { class: "json" }, c.kind === "removed" ? "" : renderValue(c.after, [], null, 2)),
    ))),
  ));
}

let graphCount = 0;

async function drawGraph(next) {
  const target = $("graph");
  const mermaidText = state.info.graph.mermaid;
  $("next-nodes").textContent = next && next.length ? `— next: ${next.join(", ")}` : (next ? "— nothing next" : "");
  if (!mermaidText) {
    target.replaceChildren(el("p", { class: "hint" }, "start `ferrograph ui URL --graph MODULE:ATTR` to see the graph and the nodes due next"));
    return;
  }
  if (!window.mermaid) {
    target.replaceChildren(el("p", { class: "hint" }, "mermaid.js did not load"));
    return;
  }
  const { svg: drawing } = await window.mermaid.render(`graph-${++graphCount}`, mermaidText);
  const holder = document.createElement("div");
  holder.innerHTML = drawing; // mermaid's own sanitized SVG (securityLevel "strict")
  const due = new Set(next || []);
  for (const node of holder.querySelectorAll("g.node")) {
    const name = node.textContent.trim();
    if (due.has(name)) {
      node.classList.add("next");
      node.setAttribute("data-next", "1");
    }
  }
  target.replaceChildren(...holder.childNodes);
}

// ---- actions

function fillActions(view) {
  const actions = $("actions");
  actions.hidden = state.info.read_only;
  if (state.info.read_only) return;
  const channel = $("fork-channel");
  const keys = Object.keys(view.values);
  const chosen = keys.includes(channel.value) ? channel.value : keys[0];
  channel.replaceChildren(...keys.map((k) => el("option", { value: k }, k)));
  if (chosen !== undefined) channel.value = chosen;
  showForkValue();
  const asNode = $("fork-as-node");
  const keep = asNode.value;
  asNode.replaceChildren(el("option", { value: "" }, "(inferred)"), ...state.info.graph.nodes.map((n) => el("option", { value: n }, n)));
  asNode.value = state.info.graph.nodes.includes(keep) ? keep : "";
  $("replay").disabled = view.checkpoint_ns !== "";
}

function showForkValue() {
  const key = $("fork-channel").value;
  $("fork-value").value = key ? JSON.stringify(plain(state.view.values[key]), null, 2) : "";
}

function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} is not valid JSON: ${e.message}`);
  }
}

async function fork(event) {
  event.preventDefault();
  const channel = $("fork-channel").value;
  if (!channel) throw new Error("this checkpoint has no state channel to write");
  const values = { [channel]: parseJson($("fork-value").value, `the new value of ${channel}`) };
  const response = await post(`/api/threads/${encodeURIComponent(state.thread)}/fork`, {
    checkpoint_id: state.selected, values, as_node: $("fork-as-node").value || null,
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error);
  logLine(`forked: new checkpoint ${body.config.checkpoint_id}`, "done");
  state.rows = [];
  location.hash = `#/thread/${encodeURIComponent(state.thread)}/${encodeURIComponent(body.config.checkpoint_id)}`;
}

function logLine(text, cls) {
  const log = $("run-log");
  log.append(el("li", cls ? { class: cls } : {}, text));
  log.scrollTop = log.scrollHeight;
}

// Reads the server-sent events of a run from the POST's streamed response.
async function streamRun(body) {
  $("run-log").replaceChildren();
  for (const button of $("actions").querySelectorAll("button")) button.disabled = true;
  try {
    const response = await post(`/api/threads/${encodeURIComponent(state.thread)}/run`, body);
    if (!response.ok) throw new Error((await response.json()).error);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let done = null;
    for (;;) {
      const { value, done: finished } = await reader.read();
      if (finished) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const message = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = (message.match(/^event: (.*)$/m) || [])[1];
        const data = JSON.parse((message.match(/^data: (.*)$/m) || [])[1] || "null");
        if (event === "chunk") {
          for (const [node, update] of Object.entries(data)) logLine(`${node}: ${JSON.stringify(plain(update))}`);
        } else if (event === "error") {
          logLine(data.error, "error");
        } else if (event === "done") {
          done = data;
          logLine(`done: latest checkpoint ${data.checkpoint_id}${data.next.length ? `, next: ${data.next.join(", ")}` : ""}`, "done");
        }
      }
    }
    state.rows = [];
    if (done && done.checkpoint_id) location.hash = `#/thread/${encodeURIComponent(state.thread)}/${encodeURIComponent(done.checkpoint_id)}`;
  } finally {
    for (const button of $("actions").querySelectorAll("button")) button.disabled = false;
    fillActions(state.view);
  }
}

// ---- routing: #/ (threads), #/thread/ID[/CHECKPOINT[?ns=NS]]

async function route() {
  showError("");
  const hash = location.hash || "#/";
  const match = hash.match(/^#\/thread\/([^/?]+)(?:\/([^/?]+))?(?:\?ns=(.*))?$/);
  if (!match) {
    await loadThreads();
    return;
  }
  const [threadId, checkpointId, ns] = [match[1], match[2], match[3]].map((p) => (p === undefined ? undefined : decodeURIComponent(p)));
  await loadThread(threadId, checkpointId);
  if (checkpointId && ns !== undefined) await selectCheckpoint(checkpointId, ns);
}

function guarded(fn) {
  return (...args) => fn(...args).catch((e) => { if (e.message !== "not logged in") showError(e.message); });
}

async function start() {
  if (window.mermaid) window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
  state.info = await api("/api/info");
  $("saver").textContent = state.info.saver;
  $("mode").textContent = state.info.read_only ? "read-only" : `actions on (graph ${state.info.graph.spec})`;
  $("thread-filter").addEventListener("submit", guarded(async (e) => { e.preventDefault(); state.offset = 0; await loadThreads(); }));
  $("prev").addEventListener("click", guarded(async () => { state.offset = Math.max(0, state.offset - PAGE); await loadThreads(); }));
  $("next").addEventListener("click", guarded(async () => { state.offset += PAGE; await loadThreads(); }));
  $("diff-against").addEventListener("change", guarded(showDiff));
  $("fork-form").addEventListener("submit", guarded(fork));
  $("fork-channel").addEventListener("change", showForkValue);
  $("replay").addEventListener("click", guarded(() => streamRun({ kind: "replay", checkpoint_id: state.selected })));
  $("resume-form").addEventListener("submit", guarded(async (e) => {
    e.preventDefault();
    await streamRun({ kind: "resume", resume: parseJson($("resume-value").value, "the resume value") });
  }));
  $("input-form").addEventListener("submit", guarded(async (e) => {
    e.preventDefault();
    await streamRun({ kind: "input", input: parseJson($("run-input").value, "the input") });
  }));
  window.addEventListener("hashchange", guarded(route));
  await route();
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", guarded(start));
