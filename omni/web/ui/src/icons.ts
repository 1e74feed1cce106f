// Channel and UI icons as inline SVG: emoji need an emoji font the operator's machine may not
// have (they render as empty boxes), an SVG path always draws. Paths are our own simple
// 24×24 strokes; colour follows the text (currentColor).
const NS = "http://www.w3.org/2000/svg";

const PATHS: Record<string, string[]> = {
  // a speech bubble
  widget: ["M4 5h16a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H10l-5 4v-4H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1z"],
  // a paper plane
  telegram: ["M21 4 3 11l6 2.5L19 7l-8 8 .5 5 3-3.5 4.5 3.5z"],
  // a telephone handset
  voice: [
    "M6.6 3.5 9 3l1.6 4.4-2 1.6a11 11 0 0 0 6.4 6.4l1.6-2 4.4 1.6-.5 2.4a2 2 0 0 1-2 1.6A15.5 15.5 0 0 1 5 5.5a2 2 0 0 1 1.6-2z",
  ],
  // an envelope
  email: ["M3 6h18v12H3z", "m3 6 9 7 9-7"],
  // two arrows
  api: ["M4 8h14l-3-3", "M20 16H6l3 3"],
  // a paper clip
  attachment: ["M20 11.5 12 19.5a5 5 0 0 1-7-7l8-8a3.5 3.5 0 0 1 5 5l-8 8a2 2 0 0 1-3-3l7.5-7.5"],
  // a small robot head
  bot: ["M5 8h14v11H5z", "M12 4v4", "M9 13h.01", "M15 13h.01", "M9 16.5h6"],
  // a dot for anything else
  other: ["M12 10a2 2 0 1 1 0 4 2 2 0 0 1 0-4z"],
};

export const CHANNELS = ["widget", "telegram", "voice", "email", "api"];

/** An inline SVG icon; ``label`` becomes its accessible name (and tooltip), else it is decorative. */
export function icon(name: string, label = ""): SVGSVGElement {
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "16");
  svg.setAttribute("height", "16");
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "1.8");
  svg.setAttribute("stroke-linecap", "round");
  svg.setAttribute("stroke-linejoin", "round");
  svg.setAttribute("class", `svg-icon icon-${name}`);
  svg.setAttribute("data-icon", name);
  if (label) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    const title = document.createElementNS(NS, "title");
    title.textContent = label;
    svg.append(title);
  } else {
    svg.setAttribute("aria-hidden", "true");
  }
  for (const d of PATHS[name] ?? PATHS.other) {
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

/** The icon of a conversation's channel (a call is a call whatever inbox it came through). */
export function channelSvg(channel: string | null | undefined, medium?: string, label = ""): SVGSVGElement {
  const name = medium === "voice" ? "voice" : channel && CHANNELS.includes(channel) ? channel : "other";
  const svg = icon(name, label);
  svg.setAttribute("data-channel", name);
  return svg;
}
