// The page: asks /health what the model is, sends the source to /v1/translate (the API any
// program calls) and shows the translation, the n-best alternatives with their scores and the
// cross-attention of the chosen alternative (heatmap.js).
"use strict";

const $ = id => document.getElementById(id);
const state = { model: null, result: null, chosen: 0 };

function showError(message) {
  $("error").textContent = message || "";
  $("error").hidden = !message;
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new Error(`cannot reach the server (${err.message})`);
  }
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status} without a JSON body` }));
  if (!response.ok) {
    const error = new Error(data.error || `HTTP ${response.status}`);
    error.status = response.status;
    error.data = data;
    throw error;
  }
  return data;
}

function option(value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  return o;
}

function showPair(source, target) {
  $("source-label").textContent = `Source: ${source}`;
  $("target-label").textContent = `Translation: ${target}`;
}

function setModel(health) {
  const m = health.model;
  state.model = m;
  $("pair").textContent = `${m.source_name} (${m.source}) → ${m.target_name} (${m.target})`;
  showPair(m.source_name, m.target_name);
  if (m.directions) {   // a multilingual model: choose the direction (the default one first selected)
    $("direction").replaceChildren(...m.directions.map(d => option(d, d.replace("-", " → "))));
    $("direction").value = `${m.source}-${m.target}`;
    $("direction").hidden = false;
    $("pair").hidden = true;
    $("direction").onchange = () => showPair(...$("direction").value.split("-"));
  }
  $("status").textContent = "ready";
  $("status").className = "status ok";
  $("beam").max = health.limits.max_beam_size;
  $("beam").value = health.defaults.beam_size;
  $("nbest").max = health.limits.max_nbest;
  $("nbest").value = Math.min(3, health.limits.max_nbest);
  $("key-label").hidden = !health.limits.api_key;
  const layers = [...Array(m.decoder_layers).keys()].map(l => option(l, `${l + 1} of ${m.decoder_layers}`));
  $("layer").replaceChildren(...layers);
  $("layer").value = m.decoder_layers - 1;
  $("head").replaceChildren(option(-1, "mean of heads"),
    ...[...Array(m.heads).keys()].map(h => option(h, `${h + 1} of ${m.heads}`)));
}

async function connect() {
  try {
    const health = await api("health");
    setModel(health);
    showError("");
  } catch (err) {
    const status = err.data && err.data.status;
    $("status").textContent = status || "unreachable";
    $("status").className = "status";
    if (status === "failed") { showError(err.message); return; }
    setTimeout(connect, 1000);   // loading, or the server is not up yet
  }
}

function drawAttention() {
  const r = state.result;
  const panel = $("attention-panel");
  const cand = r && r.source_pieces && r.nbest[state.chosen];
  panel.hidden = !cand;
  if (!cand) return;
  const layer = Number($("layer").value), head = Number($("head").value);
  const m = Heatmap.matrix(cand.attention, layer, head);
  Heatmap.draw($("heatmap"), $("src-tokens"), $("tgt-tokens"), r.source_pieces, cand.target_pieces, m);
  $("attention-note").textContent = state.chosen === 0 ? "of the best translation" : `of alternative ${state.chosen + 1}`;
}

// With source=auto (a model with language profiles), what the text reads as: a note, or a warning
// when it reads like none of the languages the model translates from (the translation will
// suffer). A multilingual model's tag names only the target: another of its sources is fine.
function showDetected(found) {
  const note = $("detected");
  note.hidden = !found;
  if (!found) return;
  const pct = `${found.confidence.toFixed(1)}%`;
  const off = found.confidence < 50;
  note.textContent = off ? `This does not read like ${found.language} (${pct}), the language the model `
    + "translates from; the translation may be poor" : `Reads as ${found.language} (${pct})`;
  note.className = off ? "note warn" : "note";
}

function showResult(r) {
  state.result = r;
  state.chosen = 0;
  $("translation").textContent = r.text;
  const items = r.nbest.map((c, i) => {
    const li = document.createElement("li");
    const text = document.createElement("span");
    text.className = "alt-text";
    text.textContent = c.text;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = c.score.toFixed(3);
    score.title = "length-normalised log-probability (higher is better)";
    li.append(text, score);
    li.tabIndex = 0;
    li.setAttribute("aria-selected", i === 0);
    const choose = () => {
      state.chosen = i;
      [...$("alternatives").children].forEach((n, k) => n.setAttribute("aria-selected", k === i));
      drawAttention();
    };
    li.onclick = choose;
    li.onkeydown = e => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); choose(); } };
    return li;
  });
  $("alternatives").replaceChildren(...items);
  drawAttention();
}

async function translate() {
  const text = $("source").value;
  if (!text.trim()) { showError("Type something to translate."); return; }
  const oneLine = !text.includes("\n");
  const attention = oneLine && state.model.attention;   // an export (backend=ctranslate2) has none to show
  const body = { q: text, beam_size: Number($("beam").value), nbest: Number($("nbest").value), attention };
  if (!$("key-label").hidden) body.api_key = $("api-key").value;
  if (!$("direction").hidden) [body.source, body.target] = $("direction").value.split("-");
  if (state.model.detection) body.source = "auto";   // the server says what the text reads as
  $("translate").disabled = true;
  $("translate").textContent = "Translating…";
  try {
    const data = await api("v1/translate", body);
    showError("");
    showResult(data.translations[0]);
    showDetected(data.translations[0].detected_language);
  } catch (err) {
    showError(err.message);
    showDetected(null);
  } finally {
    $("translate").disabled = false;
    $("translate").textContent = "Translate";
  }
}

$("translate").onclick = translate;
$("source").addEventListener("keydown", e => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); translate(); }
});
$("layer").onchange = drawAttention;
$("head").onchange = drawAttention;
connect();
