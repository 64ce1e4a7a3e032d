// Places the family network's people around the child so that no two boxes overlap and no
// name is cut: each box is as wide as its name (a long name wraps onto lines), family sits on
// the inner ring(s), the wider network on the outer ones, and a ring holds only as many boxes
// as fit on it (more rings when needed). The picture's size follows from the boxes, and the
// SVG scales it to the window.

export type Measure = (text: string, font: string) => number;

export interface Box {
  id: string;
  lines: string[];
  sub: string[];
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Layout {
  boxes: Box[];
  child: { lines: string[]; x: number; y: number; w: number; h: number };
  width: number;
  height: number;
}

export const NAME_FONT = "700 13px system-ui, sans-serif";
export const SUB_FONT = "400 12px system-ui, sans-serif";
const LINE = 16;
const PAD_X = 12;
const PAD_Y = 8;
const MAX_TEXT = 170;
const GAP = 14;

/** Breaks `text` into lines no wider than `max` (at spaces; a word wider than `max` is broken
 *  between characters, keeping emoji and combining marks whole). */
export function wrap(text: string, max: number, font: string, measure: Measure): string[] {
  const lines: string[] = [];
  let line = "";
  const push = () => {
    if (line) lines.push(line);
    line = "";
  };
  for (const word of text.trim().split(/\s+/)) {
    const candidate = line ? `${line} ${word}` : word;
    if (measure(candidate, font) <= max) {
      line = candidate;
      continue;
    }
    push();
    if (measure(word, font) <= max) {
      line = word;
      continue;
    }
    const graphemes = typeof Intl.Segmenter === "function"
      ? [...new Intl.Segmenter(undefined, { granularity: "grapheme" }).segment(word)].map((s) => s.segment)
      : [...word];
    for (const g of graphemes) {
      if (line && measure(line + g, font) > max) push();
      line += g;
    }
  }
  push();
  return lines.length ? lines : [""];
}

function boxOf(id: string, name: string, sub: string[], measure: Measure): Box {
  const lines = wrap(name, MAX_TEXT, NAME_FONT, measure);
  const widest = Math.max(...lines.map((l) => measure(l, NAME_FONT)), ...sub.map((s) => measure(s, SUB_FONT)));
  return { id, lines, sub, x: 0, y: 0, w: Math.ceil(widest) + 2 * PAD_X, h: (lines.length + sub.length) * LINE + 2 * PAD_Y };
}

function overlaps(a: { x: number; y: number; w: number; h: number }, b: { x: number; y: number; w: number; h: number }, gap = 0): boolean {
  return Math.abs(a.x - b.x) * 2 < a.w + b.w + gap && Math.abs(a.y - b.y) * 2 < a.h + b.h + gap;
}

/** Whether any two of `boxes` (or a box and the child) overlap. */
export function anyOverlap(layout: Layout): boolean {
  const all = [...layout.boxes, layout.child];
  for (let i = 0; i < all.length; i++) for (let j = i + 1; j < all.length; j++) if (overlaps(all[i], all[j])) return true;
  return false;
}

export function layoutMap(
  child: string,
  people: { id: string; name: string; sub: string[]; inner: boolean }[],
  measure: Measure,
): Layout {
  const childLines = wrap(child, MAX_TEXT, NAME_FONT, measure);
  const cw = Math.ceil(Math.max(...childLines.map((l) => measure(l, NAME_FONT)))) + 2 * PAD_X + 16;
  const centre = { lines: childLines, x: 0, y: 0, w: cw, h: childLines.length * LINE + 2 * PAD_Y + 12 };
  const placed: Box[] = [];
  // Ellipses a little wider than tall suit a landscape window.
  const ASPECT = 1.6;
  let radius = Math.max(centre.w, centre.h * ASPECT) / 2 + 90;
  for (const group of [people.filter((p) => p.inner), people.filter((p) => !p.inner)]) {
    let queue = group.map((p) => boxOf(p.id, p.name, p.sub, measure));
    let turn = 0;
    while (queue.length > 0) {
      // As many boxes as fit on this ring, by the ring's length and the boxes' widths.
      const ry = radius / ASPECT;
      const circumference = Math.PI * (3 * (radius + ry) - Math.sqrt((3 * radius + ry) * (radius + 3 * ry)));
      let used = 0;
      let n = 0;
      for (const b of queue) {
        if (n > 0 && used + b.w + GAP * 2 > circumference * 0.8) break;
        used += b.w + GAP * 2;
        n++;
      }
      const ring = queue.slice(0, n);
      queue = queue.slice(n);
      const offset = (turn * Math.PI) / Math.max(n, 1);
      let ok = true;
      ring.forEach((b, i) => {
        const angle = offset + (2 * Math.PI * i) / n - Math.PI / 2;
        b.x = radius * Math.cos(angle);
        b.y = ry * Math.sin(angle);
      });
      // A box that still touches another (or the child) moves the whole ring outward.
      for (const b of ring) {
        if ([...placed, centre].some((o) => overlaps(o, b, GAP)) || ring.some((o) => o !== b && overlaps(o, b, GAP))) ok = false;
      }
      if (!ok) {
        queue = [...ring, ...queue];
        radius += 40;
        continue;
      }
      placed.push(...ring);
      const tallest = Math.max(...ring.map((b) => b.h));
      const widest = Math.max(...ring.map((b) => b.w));
      radius += Math.max(widest * 0.6, tallest * ASPECT) + GAP * 2;
      turn++;
    }
  }
  // The picture around everything, with a margin; the child at its centre.
  const all = [...placed, centre];
  const minX = Math.min(...all.map((b) => b.x - b.w / 2)) - 10;
  const maxX = Math.max(...all.map((b) => b.x + b.w / 2)) + 10;
  const minY = Math.min(...all.map((b) => b.y - b.h / 2)) - 10;
  const maxY = Math.max(...all.map((b) => b.y + b.h / 2)) + 10;
  for (const b of all) {
    b.x -= minX;
    b.y -= minY;
  }
  return { boxes: placed, child: centre, width: maxX - minX, height: maxY - minY };
}

export const LINE_HEIGHT = LINE;
export const PADDING_Y = PAD_Y;
