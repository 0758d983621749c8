// A uPlot time-series chart in a figure: a visible title, a summary for screen readers (aria-label), and the
// data as a table on request. It follows its box's width (ResizeObserver) and the colour scheme (the colours
// are the stylesheet's custom properties, read again when the scheme changes).
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { useColorScheme } from './hooks';
import { timeRange } from './series';

export interface Palette {
  /** A custom property of the stylesheet, e.g. palette('--chart-1'). */
  (name: string): string;
}

export interface ChartProps {
  testid: string;
  title: string;
  /** The aria-label: what the chart shows, in a sentence. */
  summary: string;
  /** data-points / data-failures of the figure. */
  points: number;
  failures: number;
  data: uPlot.AlignedData;
  series(palette: Palette): uPlot.Series[];
  /** The y axis's labels. */
  formatY(value: number): string;
  /** The y axis's ticks from `min` to `max`, at most `most` steps (uPlot's own, powers of ten, without). */
  yTicks?(min: number, max: number, most: number): number[];
  /** Shown instead of an empty plot. */
  empty: string;
  /** The data as a table, rendered when its disclosure opens. */
  table(): ComponentChildren;
  height?: number;
}

/** A time axis's instant (uPlot's seconds) for people. */
export const timeOf = (seconds: number) => new Date(seconds * 1000).toLocaleString();

const MIN_WIDTH = 200;
/** The least room between two ticks of the y axis, in CSS pixels (uPlot's default). */
const Y_TICK_SPACE = 30;

/**
 * The plot's options: its axes and series in the colours of the stylesheet's `palette`; `mark` hears the y
 * axis's labels each time they are drawn (the figure's data-y-ticks: the canvas has no text to read) and the
 * time axis's range each time it is set (data-x-range: "min max", seconds).
 */
function plotOptions(
  props: ChartProps,
  palette: Palette,
  size: { width: number; height: number },
  mark: (attribute: 'data-y-ticks' | 'data-x-range', value: string) => void,
): uPlot.Options {
  const axis = (extra: Partial<uPlot.Axis> = {}): uPlot.Axis => ({
    stroke: palette('--muted'),
    grid: { stroke: palette('--grid'), width: 1 },
    ticks: { stroke: palette('--grid'), width: 1, size: 4 },
    font: '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
    ...extra,
  });
  const { formatY, yTicks } = props;
  return {
    ...size,
    scales: {
      x: { time: true, range: (u, min, max) => timeRange(u.data[0], min, max) },
      y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      axis(),
      axis({
        size: 72,
        space: Y_TICK_SPACE,
        ...(yTicks && {
          splits: (u: uPlot, _axis: number, min: number, max: number) =>
            yTicks(min, max, Math.floor(u.bbox.height / uPlot.pxRatio / Y_TICK_SPACE)),
        }),
        values: (_u, splits) => {
          const labels = splits.map((v) => (v === null ? '' : formatY(v)));
          mark('data-y-ticks', labels.join(' | '));
          return labels;
        },
      }),
    ],
    series: [{ label: 'Time', value: (_u, v) => (v === null ? '—' : timeOf(v)) }, ...props.series(palette)],
    legend: { show: true, live: true },
    cursor: { drag: { x: true, y: false }, points: { size: 7 } },
    hooks: {
      setScale: [
        (u, key) => {
          if (key === 'x') mark('data-x-range', `${u.scales.x!.min} ${u.scales.x!.max}`);
        },
      ],
    },
  };
}

/** Resizes `chart` to its box's width (once a frame at most); returns the stop. */
function followWidth(node: HTMLElement, chart: uPlot, height: number): () => void {
  let frame = 0;
  const observer = new ResizeObserver(() => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => {
      const width = Math.max(MIN_WIDTH, node.clientWidth);
      if (width !== chart.width) chart.setSize({ width, height });
    });
  });
  observer.observe(node);
  return () => {
    cancelAnimationFrame(frame);
    observer.disconnect();
  };
}

export function Chart(props: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const figure = useRef<HTMLElement>(null);
  const plot = useRef<uPlot | null>(null);
  const latest = useRef(props);
  latest.current = props;
  const scheme = useColorScheme();
  const [showTable, setShowTable] = useState(false);
  const height = props.height ?? 220;
  const blank = props.points === 0 && props.failures === 0;

  useEffect(() => {
    const node = box.current;
    if (!node || blank) return undefined;
    const style = getComputedStyle(node);
    const palette: Palette = (name) => style.getPropertyValue(name).trim() || 'currentColor';
    const width = Math.max(MIN_WIDTH, node.clientWidth);
    const mark = (attribute: string, value: string) => figure.current?.setAttribute(attribute, value);
    const options = plotOptions(latest.current, palette, { width, height }, mark);
    const chart = new uPlot(options, latest.current.data, node);
    plot.current = chart;
    const stopFollowing = followWidth(node, chart, height);
    return () => {
      stopFollowing();
      chart.destroy();
      plot.current = null;
    };
  }, [scheme, blank, height]);

  useEffect(() => {
    plot.current?.setData(props.data);
  }, [props.data]);

  return (
    <figure
      ref={figure}
      class="chart"
      data-testid={props.testid}
      data-points={String(props.points)}
      data-failures={String(props.failures)}
      aria-label={props.summary}
    >
      <figcaption>
        <h3>{props.title}</h3>
        <p class="muted small">{props.summary}</p>
      </figcaption>
      {blank ? (
        <p class="chart-empty muted">{props.empty}</p>
      ) : (
        <div class="chart-plot" ref={box} aria-hidden="true" />
      )}
      <details class="chart-data" onToggle={(event) => setShowTable(event.currentTarget.open)}>
        <summary>Data table</summary>
        {showTable && props.table()}
      </details>
    </figure>
  );
}
