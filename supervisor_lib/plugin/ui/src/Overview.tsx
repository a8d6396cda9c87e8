// The "Supervisor" page in Airflow's sidebar: spend, calls, latency and errors across the DAGs the user may read.
import { Badge, Box, Button, Flex, Heading, HStack, Input, NativeSelect, SimpleGrid, Text } from "@chakra-ui/react";
import { useMemo, useState } from "react";

import { AnomalyList } from "./Anomalies";
import { type Params, useApi, useStamp } from "./api";
import { Chart, type Line } from "./Chart";
import { Experiments } from "./Experiments";
import { count, percent, seconds, usd, when } from "./format";
import {
  AirflowLink, Card, type Column, DataTable, Exports, Kpi, Loading, Outcome, Problem, runPath, Stacked,
} from "./parts";
import type {
  Anomaly, Budget, Decision, ErrorRow, Facets, Forecast, Overview as OverviewData, Providers, Series, TopRow, TopRun,
} from "./types";

const RANGES: { key: string; label: string; hours: number }[] = [
  { key: "24h", label: "24 h", hours: 24 },
  { key: "7d", label: "7 d", hours: 24 * 7 },
  { key: "30d", label: "30 d", hours: 24 * 30 },
];
const METRICS: { key: string; label: string }[] = [
  { key: "cost", label: "Cost" }, { key: "calls", label: "Calls" }, { key: "tokens", label: "Tokens" },
  { key: "p50", label: "p50 latency" }, { key: "p95", label: "p95 latency" }, { key: "error_rate", label: "Error rate" },
];
const GROUPS: { key: string; label: string }[] = [
  { key: "provider", label: "provider" }, { key: "model", label: "model" }, { key: "dag", label: "DAG" },
  { key: "task_type", label: "task type" }, { key: "team", label: "team" }, { key: "tag", label: "tag" },
];
const NARROW: { key: keyof Facets; label: string }[] = [
  { key: "dag_id", label: "DAG" }, { key: "provider", label: "provider" }, { key: "model", label: "model" },
  { key: "team", label: "team" }, { key: "tag", label: "tag" },
];

type Range = { key: string; start?: string; end?: string };

function toLocalInput(iso: string): string {
  const at = new Date(iso);
  return new Date(at.getTime() - at.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

/** The ISO start and end a range stands for, now (relative ranges slide with time). */
function bounds(range: Range): { start: string; end: string } {
  const preset = RANGES.find((r) => r.key === range.key);
  if (preset) {
    const end = new Date();
    return { start: new Date(end.getTime() - preset.hours * 3600_000).toISOString(), end: end.toISOString() };
  }
  return { start: range.start ?? new Date(Date.now() - 86400_000).toISOString(), end: range.end ?? new Date().toISOString() };
}

export function metricFormat(metric: string): (value: number) => string {
  if (metric === "cost") return usd;
  if (metric === "p50" || metric === "p95") return seconds;
  if (metric === "error_rate") return percent;
  return count;
}

export function Overview() {
  const stamp = useStamp();
  const [range, setRange] = useState<Range>({ key: "24h" });
  const [metric, setMetric] = useState("cost");
  const [groupBy, setGroupBy] = useState("provider");
  const [narrow, setNarrow] = useState<Partial<Record<keyof Facets, string>>>({});
  // a relative range is recomputed whenever there is something new, so the page follows the clock
  const { start, end } = useMemo(() => bounds(range), [range, stamp]); // eslint-disable-line react-hooks/exhaustive-deps
  const params: Params = { start, end, ...narrow };

  const overview = useApi<OverviewData>("overview", params, stamp);
  const series = useApi<Series>("series", { ...params, metric, group_by: groupBy }, stamp);
  const facets = useApi<Facets>("facets", { start, end }, stamp);
  const dags = useApi<TopRow[]>("top", { ...params, by: "dag" }, stamp);
  const tasks = useApi<TopRow[]>("top", { ...params, by: "task" }, stamp);
  const runsAllowed = !narrow.provider && !narrow.model && !narrow.team && !narrow.tag;
  const runs = useApi<TopRun[]>(runsAllowed ? "top" : null, { ...params, by: "run" }, stamp);
  const errors = useApi<ErrorRow[]>("errors", params, stamp);
  const health = useApi<Providers>("providers", {}, stamp);
  const budgets = useApi<Budget[]>("budgets", {}, stamp);
  const forecast = useApi<Forecast>("forecast", narrow, stamp);
  const decisions = useApi<Decision[]>("decisions", { limit: 15 }, stamp);
  const [changed, setChanged] = useState(0);
  const anomalies = useApi<Anomaly[]>("anomalies", { ...params, limit: 1000 }, `${stamp}|${changed}`);
  // one mark per chart bucket (hour or day) that has findings, at the bucket the chart draws
  const bucket = series.data?.range.grain === "day" ? 86400 : 3600;
  const markers = useMemo(() => [...new Set((anomalies.data ?? []).map((a) => Math.floor(Date.parse(a.occurred_at) / 1000 / bucket) * bucket))], [anomalies.data, bucket]);
  const openCount = (anomalies.data ?? []).filter((a) => a.status === "open").length;
  const o = overview.data;
  const format = metricFormat(metric);
  const lines = useMemo(() => series.data?.series.map((s) => ({ name: s.name, values: s.values })) ?? [], [series.data]);

  return (
    <Stacked>
      <Flex justify="space-between" align="center" wrap="wrap" gap={3}>
        <HStack gap={3}>
          <Heading size="lg">Supervisor</Heading>
          <Loading loading={overview.loading} />
          <Badge colorPalette="green" variant="subtle" title="New calls show within seconds">live</Badge>
        </HStack>
        <HStack gap={2} wrap="wrap">
          {RANGES.map((r) => (
            <Button key={r.key} size="xs" variant={range.key === r.key ? "solid" : "outline"} onClick={() => setRange({ key: r.key })}>
              {r.label}
            </Button>
          ))}
          <Input
            size="xs" type="datetime-local" width="auto" aria-label="from" value={toLocalInput(start)}
            onChange={(e) => e.target.value && setRange({ key: "custom", start: new Date(e.target.value).toISOString(), end })}
          />
          <Text fontSize="xs">to</Text>
          <Input
            size="xs" type="datetime-local" width="auto" aria-label="to" value={toLocalInput(end)}
            onChange={(e) => e.target.value && setRange({ key: "custom", start, end: new Date(e.target.value).toISOString() })}
          />
        </HStack>
      </Flex>
      <HStack gap={2} wrap="wrap">
        {NARROW.map(({ key, label }) => (
          <NativeSelect.Root key={key} size="xs" width="auto" minW="120px">
            <NativeSelect.Field
              aria-label={label}
              value={narrow[key] ?? ""}
              onChange={(e) => setNarrow({ ...narrow, [key]: e.target.value || undefined })}
            >
              <option value="">every {label}</option>
              {(facets.data?.[key] ?? []).map((value) => <option key={value} value={value}>{value}</option>)}
            </NativeSelect.Field>
            <NativeSelect.Indicator />
          </NativeSelect.Root>
        ))}
        <Exports path="overview" params={params} name="overview" />
      </HStack>
      <Problem error={overview.error} />

      <SimpleGrid columns={{ base: 2, md: 4, xl: 8 }} gap={3}>
        <Kpi testId="kpi-spend" label="Spend" value={usd(o?.spend_usd)}
          note={o ? `${usd(o.estimated_usd)} estimated · ${o.unpriced_calls} unpriced` : undefined} />
        <Kpi testId="kpi-calls" label="Calls" value={count(o?.calls)}
          note={o ? `${o.failed} failed · ${o.rejected} rejected` : undefined} />
        <Kpi testId="kpi-success" label="Success" value={percent(o?.success_rate)} note="answered or re-used" />
        <Kpi testId="kpi-latency" label="Latency p50 / p95" value={o ? `${seconds(o.latency_p50_s)} / ${seconds(o.latency_p95_s)}` : "–"} />
        <Kpi testId="kpi-tokens" label="Tokens" value={count(o ? o.tokens.input + o.tokens.cache_read + o.tokens.cache_write + o.tokens.output : undefined)}
          note={o ? `in ${count(o.tokens.input)} · cache read ${count(o.tokens.cache_read)} · write ${count(o.tokens.cache_write)} · out ${count(o.tokens.output)}` : undefined} />
        <Kpi testId="kpi-cache" label="Prompt-cache savings" value={usd(o?.prompt_cache_savings_usd)} />
        <Kpi testId="kpi-reused" label="Re-used answers" value={count(o?.cached_answers)}
          note={o ? `${usd(o.cached_answers_saved_usd)} not spent twice` : undefined} />
        <Kpi testId="kpi-retries" label="Retries / failovers" value={o ? `${count(o.retries)} / ${o.failovers ?? "–"}` : "–"} />
      </SimpleGrid>

      <Card
        title="Over time"
        testId="series"
        actions={
          <HStack gap={2} wrap="wrap">
            <NativeSelect.Root size="xs" width="auto">
              <NativeSelect.Field aria-label="metric" value={metric} onChange={(e) => setMetric(e.target.value)}>
                {METRICS.map((m) => <option key={m.key} value={m.key}>{m.label}</option>)}
              </NativeSelect.Field>
              <NativeSelect.Indicator />
            </NativeSelect.Root>
            <Text fontSize="xs">by</Text>
            <NativeSelect.Root size="xs" width="auto">
              <NativeSelect.Field aria-label="group by" value={groupBy} onChange={(e) => setGroupBy(e.target.value)}>
                {GROUPS.map((g) => <option key={g.key} value={g.key}>{g.label}</option>)}
              </NativeSelect.Field>
              <NativeSelect.Indicator />
            </NativeSelect.Root>
            <Exports path="series" params={{ ...params, metric, group_by: groupBy }} name={`${metric}-by-${groupBy}`} />
          </HStack>
        }
      >
        <Problem error={series.error} />
        {series.data ? (
          <Chart
            times={series.data.times}
            lines={lines}
            format={format}
            markers={markers}
            label={`${metric} by ${groupBy}`}
            onZoom={(from, to) => setRange({ key: "custom", start: new Date(from * 1000).toISOString(), end: new Date(to * 1000).toISOString() })}
          />
        ) : null}
        <Text fontSize="xs" color="fg.muted" mt={1}>
          Per {series.data?.range.grain ?? "hour"}; drag across the chart to zoom in. Red marks: the {series.data?.range.grain ?? "hour"}s with anomalies (listed below).
        </Text>
      </Card>

      <Card
        title={`Anomalies${openCount ? ` (${openCount} open)` : ""}`}
        testId="anomalies"
        actions={<Exports path="anomalies" params={{ ...params, limit: 1000 }} name="anomalies" />}
      >
        <Problem error={anomalies.error} />
        <AnomalyList rows={anomalies.data} onChange={() => setChanged((n) => n + 1)}
          empty="No anomalies in this range (the scan runs every 15 minutes: supervisor_anomaly_scan)." />
      </Card>

      <Experiments stamp={stamp} />

      <Card title="Spend this month and its forecast" testId="forecast" actions={<Exports path="forecast" params={narrow} name="forecast" />}>
        <Problem error={forecast.error} />
        {forecast.data ? <SpendForecast forecast={forecast.data} /> : null}
      </Card>

      <SimpleGrid columns={{ base: 1, lg: 2 }} gap={3}>
        <Card title="Costliest DAGs" testId="top-dags" actions={<Exports path="top" params={{ ...params, by: "dag" }} name="top-dags" />}>
          <DataTable rows={dags.data} columns={TOP_DAG_COLUMNS} />
        </Card>
        <Card title="Costliest tasks" testId="top-tasks" actions={<Exports path="top" params={{ ...params, by: "task" }} name="top-tasks" />}>
          <DataTable rows={tasks.data} columns={TOP_TASK_COLUMNS} />
        </Card>
        <Card title="Most costly runs" testId="top-runs" actions={runsAllowed ? <Exports path="top" params={{ ...params, by: "run" }} name="top-runs" /> : null}>
          {runsAllowed ? <DataTable rows={runs.data} columns={RUN_COLUMNS} />
            : <Text fontSize="sm" color="fg.muted">Runs are totalled per run only: clear the provider, model, team and tag filters.</Text>}
        </Card>
        <Card title="Errors by type" testId="errors" actions={<Exports path="errors" params={params} name="errors" />}>
          <DataTable rows={errors.data} columns={ERROR_COLUMNS} empty="No failed or rejected calls in this range." />
        </Card>
        <Card title="Provider health (last hour)" testId="health" actions={<Exports path="providers" params={{}} name="providers" />}>
          <Problem error={health.error} />
          <DataTable rows={health.data?.models} columns={HEALTH_COLUMNS} empty="No calls in the last hour." />
          {health.data && health.data.breakers.length > 0 ? (
            <Box mt={2}>
              <Text fontSize="xs" color="fg.muted" mb={1}>Circuit breakers</Text>
              <DataTable rows={health.data.breakers} columns={BREAKER_COLUMNS} />
            </Box>
          ) : null}
          {health.data && health.data.failovers.length > 0 ? (
            <Text fontSize="xs" color="fg.muted" mt={2}>
              Last failover: {when(health.data.failovers[0].decided_at)} ({health.data.failovers[0].dag_id}, {health.data.failovers[0].task_id})
            </Text>
          ) : null}
        </Card>
      </SimpleGrid>
      <Card title="Budgets" testId="budgets" actions={<Exports path="budgets" params={{}} name="budgets" />}>
        <DataTable rows={budgets.data} columns={BUDGET_COLUMNS} empty="No budget window is open." />
      </Card>
      <Card title="Recent routing decisions" testId="decisions" actions={<Exports path="decisions" params={{ limit: 15 }} name="decisions" />}>
        <DataTable rows={decisions.data} columns={DECISION_COLUMNS} empty="No routed calls yet." />
      </Card>
    </Stacked>
  );
}

const day = (iso: string) => Date.parse(`${iso}T12:00:00Z`) / 1000;
const monthDay = (iso: string) => new Date(`${iso}T00:00:00Z`).toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });

/** Daily spend of the last 30 days and the forecast to the month's end, with its band. */
function SpendForecast({ forecast: f }: { forecast: Forecast }) {
  const chart = useMemo(() => {
    const dates = [...f.history.map((h) => h.date), ...f.days.map((d) => d.date).filter((d) => d > f.history[f.history.length - 1]?.date)];
    const actual = new Map(f.history.map((h) => [h.date, h.spend_usd]));
    const ahead = new Map(f.days.map((d) => [d.date, d]));
    const pick = (key: "forecast_usd" | "low_usd" | "high_usd") => dates.map((d) => ahead.get(d)?.[key] ?? null);
    const lines: Line[] = [
      { name: "spend", values: dates.map((d) => (ahead.has(d) && !ahead.get(d)?.spent_usd ? null : actual.get(d) ?? null)) },
      { name: "forecast", values: pick("forecast_usd"), dashed: true },
      { name: `${Math.round(f.interval * 100)}% high`, values: pick("high_usd"), edge: true, points: false },
      { name: `${Math.round(f.interval * 100)}% low`, values: pick("low_usd"), edge: true, points: false },
    ];
    return { times: dates.map(day), lines };
  }, [f]);
  const end = monthDay(f.horizon_end);
  return (
    <Box>
      <HStack gap={6} wrap="wrap" mb={2} data-testid="forecast-summary">
        <Kpi label="Spent this month" value={usd(f.spent_usd)} note={`${usd(f.today_usd)} today so far`} />
        <Kpi label={`Projected by ${end}`} value={usd(f.projected_total_usd)}
          note={f.projected_low_usd !== null ? `${Math.round(f.interval * 100)}%: ${usd(f.projected_low_usd)} – ${usd(f.projected_high_usd)}` : undefined} />
        <Kpi label="Pace" value={f.daily_pace_usd !== null ? `${usd(f.daily_pace_usd)} / day` : "–"} note={f.method} />
      </HStack>
      {f.days.length ? <Chart times={chart.times} lines={chart.lines} format={usd} bands={[[2, 3]]} height={200} label="daily spend and forecast" /> : null}
      <Text fontSize="xs" color="fg.muted" mt={1}>{f.note}</Text>
    </Box>
  );
}

const money = (row: { cost_usd: number }) => usd(row.cost_usd);

const TOP_DAG_COLUMNS: Column<TopRow>[] = [
  { key: "dag", label: "DAG", render: (r) => <AirflowLink to={`dags/${encodeURIComponent(r.dag_id)}/plugin/supervisor-dag`}>{r.dag_id}</AirflowLink> },
  { key: "cost", label: "Cost", render: money, numeric: true },
  { key: "calls", label: "Calls", render: (r) => count(r.calls), numeric: true },
  { key: "errors", label: "Errors", render: (r) => count(r.errors), numeric: true },
];
const TOP_TASK_COLUMNS: Column<TopRow>[] = [
  { key: "task", label: "Task", render: (r) => `${r.dag_id} · ${r.task_id}` },
  { key: "cost", label: "Cost", render: money, numeric: true },
  { key: "calls", label: "Calls", render: (r) => count(r.calls), numeric: true },
  { key: "tokens", label: "Tokens", render: (r) => count(r.tokens), numeric: true },
];
const RUN_COLUMNS: Column<TopRun>[] = [
  { key: "run", label: "Run", render: (r) => <AirflowLink to={runPath(r.dag_id, r.run_id)}>{r.dag_id} · {r.run_id}</AirflowLink> },
  { key: "cost", label: "Cost", render: money, numeric: true },
  { key: "calls", label: "Calls", render: (r) => count(r.calls), numeric: true },
  { key: "last", label: "Last call", render: (r) => when(r.last_at) },
];
const ERROR_COLUMNS: Column<ErrorRow>[] = [
  { key: "type", label: "Error", render: (r) => r.error_type ?? "(rejected answer)" },
  { key: "outcome", label: "Outcome", render: (r) => <Outcome outcome={r.outcome} /> },
  { key: "where", label: "Provider / model", render: (r) => `${r.provider} · ${r.model}` },
  { key: "calls", label: "Calls", render: (r) => count(r.calls), numeric: true },
];
const HEALTH_COLUMNS: Column<Providers["models"][number]>[] = [
  { key: "model", label: "Provider / model", render: (r) => `${r.provider} · ${r.model}` },
  { key: "calls", label: "Calls", render: (r) => count(r.calls), numeric: true },
  { key: "errors", label: "Error rate", render: (r) => percent(r.error_rate), numeric: true },
  { key: "p95", label: "p95", render: (r) => seconds(r.latency_p95_s), numeric: true },
];
const BREAKER_COLUMNS: Column<Providers["breakers"][number]>[] = [
  { key: "key", label: "Breaker", render: (r) => r.key },
  { key: "state", label: "State", render: (r) => <Badge colorPalette={r.state === "closed" ? "green" : r.state === "open" ? "red" : "orange"}>{r.state}</Badge> },
  { key: "reason", label: "Why", render: (r) => r.reason ?? "" },
];
const BUDGET_COLUMNS: Column<Budget>[] = [
  { key: "label", label: "Budget", render: (r) => r.label },
  { key: "window", label: "Window", render: (r) => r.window },
  { key: "limit", label: "Limit", render: (r) => usd(r.limit_usd), numeric: true },
  { key: "settled", label: "Settled", render: (r) => usd(r.settled_usd), numeric: true },
  { key: "reserved", label: "Reserved", render: (r) => usd(r.reserved_usd), numeric: true },
  { key: "left", label: "Left", render: (r) => usd(r.left_usd), numeric: true },
  {
    key: "forecast", label: "Projected", numeric: true,
    render: (r) => (
      <Box title={r.forecast_method === "run-rate" ? "the spend rate so far, continued to the window's end" : `forecast (${r.forecast_method}) from the daily spend history, 80% band`}>
        {usd(r.forecast_usd)}
        {r.forecast_low_usd !== null ? <Text as="span" fontSize="xs" color="fg.muted"> ({usd(r.forecast_low_usd)} – {usd(r.forecast_high_usd)})</Text> : null}
      </Box>
    ),
  },
  { key: "runs_out", label: "Runs out", render: (r) => (r.runs_out_at ? <Text as="span" color="fg.error" data-testid="runs-out">{when(r.runs_out_at)}</Text> : "–") },
];
export const DECISION_COLUMNS: Column<Decision>[] = [
  { key: "at", label: "When", render: (r) => when(r.decided_at) },
  { key: "task", label: "Task", render: (r) => <AirflowLink to={runPath(r.dag_id, r.run_id)}>{r.dag_id} · {r.task_id}</AirflowLink> },
  { key: "outcome", label: "Outcome", render: (r) => r.outcome },
  { key: "model", label: "Model", render: (r) => (r.model ? `${r.provider} · ${r.model}` : "–") },
  { key: "failovers", label: "Failovers", render: (r) => r.failovers, numeric: true },
  { key: "why", label: "Why", render: (r) => <Text fontSize="xs" lineClamp={2} title={r.reason}>{r.reason}</Text> },
];
