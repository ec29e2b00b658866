// The cross-attention heatmap of one translation: target pieces down, source pieces across.
// Hovering a target piece (a row, a row label or a target chip) lights the source pieces it
// attended to; hovering a source piece lights the target pieces that attended to it.
"use strict";

const Heatmap = (() => {
  // viridis at five stops: dark blue (no attention) to yellow (all of it)
  const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

  function color(w) {
    const x = Math.max(0, Math.min(1, w)) * (STOPS.length - 1);
    const i = Math.min(Math.floor(x), STOPS.length - 2);
    const f = x - i;
    const c = STOPS[i].map((v, k) => Math.round(v + f * (STOPS[i + 1][k] - v)));
    return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  }

  // weights[layer][head][t][s] -> the (T, S) matrix of one head, or the mean over heads (head < 0)
  function matrix(weights, layer, head) {
    const heads = weights[layer];
    if (head >= 0) return heads[head];
    return heads[0].map((row, t) => row.map((_, s) => heads.reduce((sum, h) => sum + h[t][s], 0) / heads.length));
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function chips(box, pieces, axis) {
    box.replaceChildren(...pieces.map((p, i) => {
      const chip = el("span", "chip", p);
      chip.dataset[axis] = i;
      return chip;
    }));
  }

  // Light the chips of one axis by weight (scaled to the largest, so a spread-out row still shows).
  function light(nodes, values) {
    const top = Math.max(...values, 1e-9);
    nodes.forEach((n, i) => {
      const a = values[i] / top;
      n.style.backgroundColor = `rgba(253, 186, 37, ${a.toFixed(3)})`;
      n.classList.toggle("strong", a > 0.5);
    });
  }

  function clear(nodes) {
    nodes.forEach(n => { n.style.backgroundColor = ""; n.classList.remove("strong"); });
  }

  // Draw m (T x S) into table, with source / target chips; returns nothing, wires the hovers.
  function draw(table, srcBox, tgtBox, src, tgt, m) {
    chips(srcBox, src, "col");
    chips(tgtBox, tgt, "row");
    const head = el("tr");
    head.appendChild(el("th", "corner"));
    src.forEach((p, s) => {
      const th = el("th", "col-label");
      th.appendChild(el("span", "", p));
      th.dataset.col = s;
      th.scope = "col";
      head.appendChild(th);
    });
    const rows = [el("thead")];
    rows[0].appendChild(head);
    const body = el("tbody");
    tgt.forEach((p, t) => {
      const tr = el("tr");
      const th = el("th", "row-label", p);
      th.dataset.row = t;
      th.scope = "row";
      tr.appendChild(th);
      m[t].forEach((w, s) => {
        const td = el("td", "cell");
        td.style.backgroundColor = color(w);
        td.dataset.row = t;
        td.dataset.col = s;
        td.title = `${p} ← ${src[s]}: ${w.toFixed(3)}`;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    rows.push(body);
    table.replaceChildren(...rows);

    const srcChips = [...srcBox.children], tgtChips = [...tgtBox.children];
    const colLabels = [...table.querySelectorAll("th.col-label")];
    const rowLabels = [...table.querySelectorAll("th.row-label")];
    function reset() {
      clear(srcChips); clear(tgtChips); clear(colLabels); clear(rowLabels);
      table.querySelectorAll(".active").forEach(n => n.classList.remove("active"));
    }
    function fromTarget(t) {   // row t: where the decoder looked while writing target piece t
      light(srcChips, m[t]); light(colLabels, m[t]);
      tgtChips[t].classList.add("active"); rowLabels[t].classList.add("active");
    }
    function fromSource(s) {   // column s: which target pieces looked at source piece s
      const col = m.map(row => row[s]);
      light(tgtChips, col); light(rowLabels, col);
      srcChips[s].classList.add("active"); colLabels[s].classList.add("active");
    }
    function over(event) {
      const node = event.target.closest("[data-row], [data-col]");
      reset();
      if (!node) return;
      const row = node.dataset.row, col = node.dataset.col;
      if (row !== undefined) fromTarget(Number(row));
      else if (col !== undefined) fromSource(Number(col));
      if (row !== undefined && col !== undefined) node.classList.add("active");
    }
    for (const box of [table, srcBox, tgtBox]) {
      box.onmouseover = over;
      box.onmouseleave = reset;
    }
  }

  return { color, matrix, draw };
})();
