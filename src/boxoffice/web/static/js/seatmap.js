// SeatMap: a whole venue on one <canvas>, for 50,000 seats and more.
//
// Seats live in typed arrays (no DOM node per seat). A full draw happens only when the view
// changes (zoom, pan, resize, new seats); a status change repaints just that seat's cell, so a
// stream of thousands of changes a second costs a few fillRects per frame. Everything is drawn
// in at most one animation frame after a change.
//
//   const map = new SeatMap(canvas, { maxSelect: 4, stageLabel: t("STAGE"), onSelect(ids) {}, onHover(seat, x, y) {} });
//   map.setSeats([{id, section, row, number, price, status}, ...]);   // status: AVAILABLE | TEMP_RESERVED | RESERVED
//   map.setStatus([ids], "RESERVED");    map.toggle(id);   map.zoomBy(1.5);   map.resetView();
//   map.seat(id) -> {id, section, row, number, price, status, selected}
//   map.stats -> {firstDrawMs (a performance.now() time), firstDrawCostMs, lastDrawMs, frames, maxFrameMs}
// Sections are laid out in the order given (a venue's own ranking), rows top to bottom.

const STATUS_CODES = { AVAILABLE: 0, TEMP_RESERVED: 1, RESERVED: 2 };
const STATUS_NAMES = ["AVAILABLE", "TEMP_RESERVED", "RESERVED"];
const BACKGROUND = "#0f172a";
const TAKEN = "#475569";
const SELECTED = "#fbbf24";
// Price tiers, most expensive first (distinct on a dark background and for common colour blindness).
export const TIER_COLORS = ["#f472b6", "#60a5fa", "#34d399", "#c084fc", "#fb923c", "#22d3ee", "#a3e635", "#f87171"];
const GAP = 3; // layout units between sections (one unit = one seat cell)
const LABEL = 2; // units above a section for its name

// "#rrggbb" -> the little-endian RGBA word ImageData wants.
function rgba(hex) {
  const v = parseInt(hex.slice(1), 16);
  return (0xff << 24) | ((v & 0xff) << 16) | (v & 0xff00) | ((v >> 16) & 0xff);
}

export class SeatMap {
  constructor(canvas, options = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { alpha: false });
    this.maxSelect = options.maxSelect || 4;
    this.onSelect = options.onSelect || (() => {});
    this.onHover = options.onHover || (() => {});
    this.selectable = options.selectable !== false;
    this.stageLabel = options.stageLabel || "STAGE"; // the page passes it in its language
    this.n = 0;
    this.selectedSet = new Set();
    this.view = { scale: 1, x: 0, y: 0 };
    this.fullPending = false;
    this.dirty = new Set();
    this.frameRequested = false;
    this.stats = { firstDrawMs: null, firstDrawCostMs: null, lastDrawMs: 0, frames: 0, maxFrameMs: 0 };
    this.createdAt = performance.now();
    this._bind();
    this._resize();
  }

  // ------------------------------------------------------------------ data

  setSeats(seats) {
    const n = seats.length;
    this.n = n;
    this.ids = new Float64Array(n);
    this.row = new Uint16Array(n);
    this.num = new Uint16Array(n);
    this.price = new Float64Array(n);
    this.status = new Uint8Array(n);
    this.sec = new Uint16Array(n);
    this.x = new Float32Array(n);
    this.y = new Float32Array(n);
    this.tier = new Uint8Array(n);
    this.index = new Map();
    const sections = new Map();
    const prices = new Set();
    for (let i = 0; i < n; i++) {
      const s = seats[i];
      let sec = sections.get(s.section);
      if (!sec) {
        sec = { name: s.section, index: sections.size, rows: 0, cols: 0, left: 0, top: 0, cells: null, prices: new Set() };
        sections.set(s.section, sec);
      }
      if (s.row > sec.rows) sec.rows = s.row;
      if (s.number > sec.cols) sec.cols = s.number;
      sec.prices.add(s.price);
      prices.add(s.price);
      this.ids[i] = s.id;
      this.row[i] = s.row;
      this.num[i] = s.number;
      this.price[i] = s.price;
      this.status[i] = STATUS_CODES[s.status] ?? 2;
      this.sec[i] = sec.index;
      this.index.set(s.id, i);
    }
    this.sections = [...sections.values()];
    this.tiers = [...prices].sort((a, b) => b - a);
    const tierOf = new Map(this.tiers.map((p, i) => [p, i % TIER_COLORS.length]));
    this._layoutSections();
    for (const sec of this.sections) sec.cells = new Int32Array(sec.rows * sec.cols).fill(-1);
    for (let i = 0; i < n; i++) {
      const sec = this.sections[this.sec[i]];
      this.x[i] = sec.left + this.num[i] - 1;
      this.y[i] = sec.top + this.row[i] - 1;
      sec.cells[(this.row[i] - 1) * sec.cols + (this.num[i] - 1)] = i;
      this.tier[i] = tierOf.get(this.price[i]);
    }
    for (const id of [...this.selectedSet]) {
      const i = this.index.get(id);
      if (i === undefined || this.status[i] !== 0) this.selectedSet.delete(id);
    }
    this.resetView();
  }

  _layoutSections() {
    // Lines of sections about as wide as the canvas's shape allows; a section with a very
    // different depth (a VIP block before the floor) starts a line of its own.
    const area = this.sections.reduce((a, s) => a + (s.cols + GAP) * (s.rows + GAP + LABEL), 0);
    const widest = this.sections.reduce((a, s) => Math.max(a, s.cols), 0);
    const aspect = Math.min(Math.max((this.cssWidth || 4) / (this.cssHeight || 3), 0.6), 2.5);
    const target = Math.max(widest, Math.sqrt(area * aspect) * 1.1);
    let x = 0, y = LABEL + 4, lineHeight = 0, lineRows = 0; // 4 units for the stage at the top
    for (const sec of this.sections) {
      const unlike = lineRows && (sec.rows > lineRows * 1.5 || sec.rows * 1.5 < lineRows);
      if (x > 0 && (x + sec.cols > target || unlike)) {
        x = 0;
        y += lineHeight + GAP;
        lineHeight = 0;
        lineRows = 0;
      }
      sec.left = x;
      sec.top = y + LABEL;
      x += sec.cols + GAP;
      lineHeight = Math.max(lineHeight, sec.rows + LABEL);
      lineRows = lineRows || sec.rows;
    }
    // Centre each line of sections.
    this.width = 0;
    for (const sec of this.sections) this.width = Math.max(this.width, sec.left + sec.cols);
    const lines = new Map();
    for (const sec of this.sections) {
      const line = lines.get(sec.top) || [];
      line.push(sec);
      lines.set(sec.top, line);
    }
    for (const line of lines.values()) {
      const right = line[line.length - 1].left + line[line.length - 1].cols;
      const shift = (this.width - right) / 2;
      for (const sec of line) sec.left += Math.floor(shift);
    }
    this.height = this.sections.reduce((a, s) => Math.max(a, s.top + s.rows), 0);
  }

  seat(id) {
    const i = this.index.get(id);
    return i === undefined ? null : this._seatAt(i);
  }

  _seatAt(i) {
    const id = this.ids[i];
    return {
      id, section: this.sections[this.sec[i]].name, row: this.row[i], number: this.num[i],
      price: this.price[i], status: STATUS_NAMES[this.status[i]], selected: this.selectedSet.has(id),
    };
  }

  setStatus(ids, statusName) {
    const code = STATUS_CODES[statusName];
    if (code === undefined) return 0;
    let changed = 0;
    let selectionChanged = false;
    for (const id of ids) {
      const i = this.index.get(id);
      if (i === undefined || this.status[i] === code) continue;
      this.status[i] = code;
      changed++;
      if (code !== 0 && this.selectedSet.delete(id)) selectionChanged = true;
      this.dirty.add(i);
    }
    if (changed) this._schedule();
    if (selectionChanged) this.onSelect(this.selected());
    return changed;
  }

  selected() {
    return [...this.selectedSet];
  }

  toggle(id) {
    const i = this.index.get(id);
    if (i === undefined || !this.selectable) return false;
    if (this.selectedSet.has(id)) {
      this.selectedSet.delete(id);
    } else {
      if (this.status[i] !== 0 || this.selectedSet.size >= this.maxSelect) return false;
      this.selectedSet.add(id);
    }
    this.dirty.add(i);
    this._schedule();
    this.onSelect(this.selected());
    return true;
  }

  clearSelection() {
    for (const id of this.selectedSet) {
      const i = this.index.get(id);
      if (i !== undefined) this.dirty.add(i);
    }
    this.selectedSet.clear();
    this._schedule();
    this.onSelect([]);
  }

  legend() {
    return this.tiers.map((price, i) => ({ price, color: TIER_COLORS[i % TIER_COLORS.length] }));
  }

  // ------------------------------------------------------------------ view

  resetView() {
    const w = this.cssWidth || 1, h = this.cssHeight || 1;
    const scale = Math.min(w / (this.width + 2), h / (this.height + 2)) || 1;
    this.view = { scale, x: (w - this.width * scale) / 2, y: (h - this.height * scale) / 2 };
    this.fitScale = scale;
    this._full();
  }

  zoomBy(factor, cx = this.cssWidth / 2, cy = this.cssHeight / 2) {
    const v = this.view;
    const next = Math.min(Math.max(v.scale * factor, this.fitScale * 0.5), 60);
    const k = next / v.scale;
    this.view = { scale: next, x: cx - (cx - v.x) * k, y: cy - (cy - v.y) * k };
    this._full();
  }

  panBy(dx, dy) {
    this.view = { ...this.view, x: this.view.x + dx, y: this.view.y + dy };
    this._full();
  }

  // Seat index under a CSS pixel of the canvas, or -1.
  hit(px, py) {
    const v = this.view;
    const lx = (px - v.x) / v.scale, ly = (py - v.y) / v.scale;
    for (const sec of this.sections || []) {
      if (lx >= sec.left && lx < sec.left + sec.cols && ly >= sec.top && ly < sec.top + sec.rows) {
        const c = Math.floor(lx - sec.left), r = Math.floor(ly - sec.top);
        return sec.cells[r * sec.cols + c];
      }
    }
    return -1;
  }

  // ------------------------------------------------------------------ drawing

  _full() {
    this.fullPending = true;
    this._schedule();
  }

  _schedule() {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => this._frame());
  }

  _frame() {
    this.frameRequested = false;
    const started = performance.now();
    if (this.fullPending) {
      this.fullPending = false;
      this.dirty.clear();
      this._drawAll();
      if (this.stats.firstDrawMs === null && this.n > 0) {
        this.stats.firstDrawMs = performance.now();
        this.stats.firstDrawCostMs = this.stats.firstDrawMs - started;
        performance.mark("seatmap-first-draw");
      }
    } else if (this.dirty.size) {
      for (const i of this.dirty) this._repaint(i);
      this.dirty.clear();
    }
    const took = performance.now() - started;
    this.stats.lastDrawMs = took;
    this.stats.frames++;
    if (took > this.stats.maxFrameMs) this.stats.maxFrameMs = took;
  }

  _applyTransform() {
    const dpr = this.dpr;
    const v = this.view;
    this.ctx.setTransform(v.scale * dpr, 0, 0, v.scale * dpr, v.x * dpr, v.y * dpr);
  }

  _color(i) {
    if (this.selectedSet.has(this.ids[i])) return SELECTED;
    if (this.status[i] !== 0) return TAKEN;
    return TIER_COLORS[this.tier[i]];
  }

  // A seat's cell and its coloured square in whole device pixels: full draws and single-seat
  // repaints use the same rounding, so a repaint never leaves a seam.
  _rect(i) {
    const v = this.view, k = v.scale * this.dpr, ox = v.x * this.dpr, oy = v.y * this.dpr;
    const x0 = Math.round(ox + this.x[i] * k), x1 = Math.round(ox + (this.x[i] + 1) * k);
    const y0 = Math.round(oy + this.y[i] * k), y1 = Math.round(oy + (this.y[i] + 1) * k);
    const pad = k >= 6 ? Math.max(1, Math.round(k * 0.12)) : 0;
    const w = Math.max(1, x1 - x0 - 2 * pad), h = Math.max(1, y1 - y0 - 2 * pad);
    return [x0, y0, x1 - x0, y1 - y0, x0 + pad, y0 + pad, w, h];
  }

  _repaint(i) {
    const ctx = this.ctx;
    const [cx, cy, cw, ch, x, y, w, h] = this._rect(i);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(cx, cy, Math.max(1, cw), Math.max(1, ch));
    ctx.fillStyle = this._color(i);
    ctx.fillRect(x, y, w, h);
  }

  _drawAll() {
    const ctx = this.ctx;
    const W = this.canvas.width, H = this.canvas.height;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, W, H);
    if (!this.n) return;
    const n = this.n;
    const k = this.view.scale * this.dpr;
    if (k < 8) {
      // Small seats: write the pixels straight into one ImageData (50,000 fillRects through the
      // rasteriser cost ~0.3 s without a GPU; this is a few milliseconds).
      const image = ctx.createImageData(W, H);
      const px = new Uint32Array(image.data.buffer);
      px.fill(rgba(BACKGROUND));
      const palette = new Map();
      for (let i = 0; i < n; i++) {
        const [, , , , x, y, w, h] = this._rect(i);
        if (x >= W || y >= H || x + w <= 0 || y + h <= 0) continue;
        const colour = this._color(i);
        let value = palette.get(colour);
        if (value === undefined) palette.set(colour, (value = rgba(colour)));
        const xa = Math.max(0, x), xb = Math.min(W, x + w), yb = Math.min(H, y + h);
        for (let yy = Math.max(0, y); yy < yb; yy++) px.fill(value, yy * W + xa, yy * W + xb);
      }
      ctx.putImageData(image, 0, 0);
    } else {
      // Big seats: few of them are on screen; draw those, one fillStyle per colour.
      const colours = new Map();
      for (let i = 0; i < n; i++) {
        const r = this._rect(i);
        if (r[4] >= W || r[5] >= H || r[4] + r[6] <= 0 || r[5] + r[7] <= 0) continue;
        const c = this._color(i);
        let list = colours.get(c);
        if (!list) colours.set(c, (list = []));
        list.push(r);
      }
      for (const [colour, list] of colours) {
        ctx.fillStyle = colour;
        for (const r of list) ctx.fillRect(r[4], r[5], r[6], r[7]);
      }
    }
    this._applyTransform();
    ctx.fillStyle = "#334155"; // the stage
    ctx.fillRect(this.width * 0.3, 0.5, this.width * 0.4, 2);
    const fontUnits = 12 / this.view.scale; // names, when legible
    if (fontUnits <= LABEL * 4) {
      ctx.fillStyle = "#cbd5e1";
      ctx.font = `${Math.min(fontUnits, 1.4)}px system-ui, sans-serif`;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(this.stageLabel, this.width / 2, 1.5);
      ctx.textAlign = "left";
      ctx.fillStyle = "#e2e8f0";
      ctx.font = `${Math.min(fontUnits, LABEL * 0.9)}px system-ui, sans-serif`;
      ctx.textBaseline = "bottom";
      for (const sec of this.sections) ctx.fillText(sec.name, sec.left, sec.top - 0.3);
    }
  }

  // ------------------------------------------------------------------ events

  resize() {
    this._resize();
  }

  _resize() {
    const rect = this.canvas.getBoundingClientRect();
    this.dpr = Math.min(window.devicePixelRatio || 1, 2);
    this.cssWidth = Math.max(1, rect.width);
    this.cssHeight = Math.max(1, rect.height);
    this.canvas.width = Math.round(this.cssWidth * this.dpr);
    this.canvas.height = Math.round(this.cssHeight * this.dpr);
    if (this.n) this.resetView();
    else this._full();
  }

  _bind() {
    const c = this.canvas;
    this._observer = new ResizeObserver(() => this._resize());
    this._observer.observe(c);
    let drag = null;
    const pointers = new Map();
    const local = (e) => {
      const r = c.getBoundingClientRect();
      return [e.clientX - r.left, e.clientY - r.top];
    };
    c.addEventListener("pointerdown", (e) => {
      c.setPointerCapture(e.pointerId);
      pointers.set(e.pointerId, local(e));
      const [x, y] = local(e);
      drag = { x, y, moved: false, pinch: pointers.size === 2 ? this._pinchDistance(pointers) : null };
    });
    c.addEventListener("pointermove", (e) => {
      const [x, y] = local(e);
      if (drag && pointers.has(e.pointerId)) {
        const [px, py] = pointers.get(e.pointerId);
        pointers.set(e.pointerId, [x, y]);
        if (pointers.size === 2 && drag.pinch) {
          const d = this._pinchDistance(pointers);
          this.zoomBy(d / drag.pinch, x, y);
          drag.pinch = d;
          drag.moved = true;
          return;
        }
        if (Math.abs(x - drag.x) + Math.abs(y - drag.y) > 4) drag.moved = true;
        if (drag.moved) this.panBy(x - px, y - py);
        return;
      }
      const i = this.hit(x, y);
      this.onHover(i >= 0 ? this._seatAt(i) : null, x, y);
    });
    const end = (e) => {
      const wasDrag = drag && drag.moved;
      pointers.delete(e.pointerId);
      if (pointers.size === 0) {
        if (drag && !wasDrag && e.type === "pointerup") {
          const [x, y] = local(e);
          const i = this.hit(x, y);
          if (i >= 0) this.toggle(this.ids[i]);
        }
        drag = null;
      }
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    c.addEventListener("pointerleave", () => this.onHover(null, 0, 0));
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [x, y] = local(e);
      this.zoomBy(e.deltaY < 0 ? 1.2 : 1 / 1.2, x, y);
    }, { passive: false });
  }

  _pinchDistance(pointers) {
    const [[ax, ay], [bx, by]] = [...pointers.values()];
    return Math.hypot(ax - bx, ay - by) || 1;
  }

  destroy() {
    this._observer.disconnect();
  }
}
