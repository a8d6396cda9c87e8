// A time-series chart (uPlot): drag across it to zoom into that time range; the legend shows values under the cursor.
import { Box } from "@chakra-ui/react";
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import uPlotCss from "uplot/dist/uPlot.min.css?inline";

import { PALETTE, useColorMode } from "./theme";

export type Line = {
  name: string; values: (number | null)[]; axis?: "left" | "right"; points?: boolean;
  /** drawn dashed (e.g. a forecast) */
  dashed?: boolean;
  /** the edge of a band (drawn thin, the band between two edges shaded) */
  edge?: boolean;
};

type Props = {
  times: number[]; // seconds since the epoch
  lines: Line[];
  format: (value: number) => string;
  formatRight?: (value: number) => string;
  onZoom?: (start: number, end: number) => void;
  height?: number;
  label?: string;
  /** the time span shown (seconds), whatever the data covers; default: the data's */
  xRange?: [number, number];
  /** a fixed left axis (e.g. [0, 1] for a rate); default: fitted to the data */
  yRange?: [number, number];
  /** moments to mark with a vertical line (anomalies), seconds since the epoch */
  markers?: number[];
  /** shade between two lines (indexes into ``lines``: upper, lower), e.g. a forecast's interval */
  bands?: [number, number][];
};

let styled = false;
function addStyles() {
  if (styled) return;
  styled = true;
  const style = document.createElement("style");
  style.dataset.supervisor = "uplot";
  style.textContent = `${uPlotCss}
.supervisor-chart .u-legend { font-size: 12px; color: inherit; }
.supervisor-chart .u-select { background: rgba(128, 128, 128, 0.2); }`;
  document.head.appendChild(style);
}

export function Chart({ times, lines, format, formatRight, onZoom, height = 260, label, xRange, yRange, markers, bands }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const mode = useColorMode();
  const zoom = useRef(onZoom);
  zoom.current = onZoom;

  useEffect(() => {
    const element = box.current;
    if (!element) return;
    addStyles();
    const style = getComputedStyle(element);
    const ink = style.color;
    const grid = style.borderColor;
    const right = lines.some((line) => line.axis === "right");
    const axis = (fmt: (value: number) => string, side?: number): uPlot.Axis => ({
      stroke: ink,
      grid: { stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
      values: (_u, values) => values.map((value) => (value === null ? "" : fmt(value))),
      size: 70,
      ...(side === undefined ? {} : { side, scale: "right", grid: { show: false } }),
    });
    const options: uPlot.Options = {
      width: Math.max(element.clientWidth, 300),
      height,
      cursor: { drag: { x: true, y: false, setScale: false } },
      scales: {
        x: xRange ? { time: true, range: () => xRange } : { time: true },
        y: yRange ? { range: () => yRange } : { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
        ...(right ? { right: { range: (_u: uPlot, _min: number, max: number) => [0, max > 0 ? max * 1.1 : 1] } } : {}),
      },
      axes: [
        { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } },
        axis(format),
        ...(right ? [axis(formatRight ?? format, 1)] : []),
      ],
      series: [
        {},
        ...lines.map((line, index) => ({
          label: line.name,
          stroke: line.edge ? "rgba(128, 128, 128, 0.6)" : PALETTE[index % PALETTE.length],
          width: line.edge ? 1 : 2,
          dash: line.dashed ? [6, 4] : undefined,
          scale: line.axis === "right" ? "right" : "y",
          points: { show: line.points ?? times.length < 60, size: 5 },
          value: (_u: uPlot, value: number | null) =>
            value === null ? "–" : (line.axis === "right" ? (formatRight ?? format) : format)(value),
        })),
      ],
      bands: bands?.map(([upper, lower]) => ({ series: [upper + 1, lower + 1] as [number, number], fill: "rgba(128, 128, 128, 0.18)" })),
      hooks: {
        draw: [
          (u: uPlot) => {
            if (!markers?.length) return;
            const context = u.ctx;
            context.save();
            context.strokeStyle = "rgba(228, 87, 86, 0.45)";
            context.fillStyle = "#e45756";
            context.lineWidth = 1.5 * devicePixelRatio;
            context.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
            for (const at of markers) {
              const x = Math.round(u.valToPos(at, "x", true));
              if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
              context.beginPath();
              context.moveTo(x, u.bbox.top);
              context.lineTo(x, u.bbox.top + u.bbox.height);
              context.stroke();
              context.beginPath();
              context.moveTo(x - 5 * devicePixelRatio, u.bbox.top);
              context.lineTo(x + 5 * devicePixelRatio, u.bbox.top);
              context.lineTo(x, u.bbox.top + 7 * devicePixelRatio);
              context.fill();
            }
            context.restore();
          },
        ],
        setSelect: [
          (u: uPlot) => {
            if (u.select.width < 5 || !zoom.current) return;
            const start = u.posToVal(u.select.left, "x");
            const end = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            zoom.current(start, end);
          },
        ],
      },
    };
    const data: uPlot.AlignedData = [times, ...lines.map((line) => line.values)];
    const chart = new uPlot(options, data, element);
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(element.clientWidth, 300), height }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
    };
  }, [times, lines, format, formatRight, height, mode, xRange?.[0], xRange?.[1], yRange?.[0], yRange?.[1], markers?.join(","), JSON.stringify(bands)]); // eslint-disable-line react-hooks/exhaustive-deps

  return (
    <Box
      ref={box}
      className="supervisor-chart"
      color="fg.muted"
      borderColor="border.muted"
      width="100%"
      minHeight={`${height}px`}
      aria-label={label}
      role="img"
      data-testid="supervisor-chart"
      data-markers={markers?.length ?? 0}
      data-bands={bands?.length ?? 0}
    />
  );
}
