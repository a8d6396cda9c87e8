// The Supervisor tab of a DAG: cost, success and latency per run over time; which tasks and models cost most.
import { Button, HStack, SimpleGrid, Text } from "@chakra-ui/react";
import { useMemo, useState } from "react";

import { AnomalyList } from "./Anomalies";
import { useApi, useStamp } from "./api";
import { Chart } from "./Chart";
import { count, percent, plural, seconds, usd, when } from "./format";
import { AirflowLink, Card, type Column, DataTable, Exports, Kpi, Loading, Problem, runPath, Stacked } from "./parts";
import type { Anomaly, DagData, TopRow, TopRun } from "./types";

const DAYS = [1, 7, 30, 90];

export function DagView({ dagId }: { dagId: string }) {
  const stamp = useStamp();
  const [days, setDays] = useState(7);
  const { start, end } = useMemo(() => {
    const until = new Date();
    return { start: new Date(until.getTime() - days * 86400_000).toISOString(), end: until.toISOString() };
  }, [days, stamp]); // eslint-disable-line react-hooks/exhaustive-deps
  const params = { start, end };
  const span: [number, number] = [Date.parse(start) / 1000, Date.parse(end) / 1000];
  const path = `dags/${encodeURIComponent(dagId)}`;
  const { data, error, loading } = useApi<DagData>(path, params, stamp);
  const [changed, setChanged] = useState(0);
  const found = useApi<Anomaly[]>("anomalies", { ...params, dag_id: dagId, limit: 1000 }, `${stamp}|${changed}`);
  const markers = useMemo(() => (found.data ?? []).map((a) => Math.floor(Date.parse(a.occurred_at) / 1000)), [found.data]);
  const runs = data?.runs ?? [];
  const times = useMemo(() => runs.map((r) => Math.floor(new Date(r.last_at ?? r.first_at ?? 0).getTime() / 1000)), [runs]);
  const costLines = useMemo(() => [
    { name: "cost per run", values: runs.map((r) => r.cost_usd), points: true },
    { name: "mean latency per call", values: runs.map((r) => r.mean_latency_s), axis: "right" as const, points: true },
  ], [runs]);
  const successLines = useMemo(() => [
    { name: "success per run", values: runs.map((r) => r.success_rate), points: true },
  ], [runs]);
  const total = runs.reduce((sum, r) => sum + r.cost_usd, 0);
  const calls = runs.reduce((sum, r) => sum + r.calls, 0);
  const errors = runs.reduce((sum, r) => sum + r.errors, 0);

  return (
    <Stacked>
      <HStack justify="space-between" wrap="wrap">
        <HStack gap={2}>
          {DAYS.map((d) => (
            <Button key={d} size="xs" variant={days === d ? "solid" : "outline"} onClick={() => setDays(d)}>{d} d</Button>
          ))}
          <Loading loading={loading} />
        </HStack>
        <Exports path={path} params={params} name={`dag-${dagId}`} />
      </HStack>
      <Problem error={error} />
      <SimpleGrid columns={{ base: 2, md: 4 }} gap={3}>
        <Kpi testId="dag-spend" label="Spend" value={usd(total)} note={`${plural(runs.length, "run")} with calls`} />
        <Kpi testId="dag-calls" label="Calls" value={count(calls)} />
        <Kpi testId="dag-success" label="Success" value={percent(calls ? 1 - errors / calls : null)} />
        <Kpi testId="dag-run-cost" label="Mean cost per run" value={usd(runs.length ? total / runs.length : null)} />
      </SimpleGrid>
      {times.length > 0 ? (
        <SimpleGrid columns={{ base: 1, xl: 2 }} gap={3}>
          <Card title="Cost and latency per run">
            <Chart times={times} lines={costLines} format={usd} formatRight={seconds} label="cost per run" xRange={span} markers={markers} />
          </Card>
          <Card title="Success per run">
            <Chart times={times} lines={successLines} format={percent} label="success per run" xRange={span} yRange={[0, 1]} markers={markers} />
          </Card>
        </SimpleGrid>
      ) : data ? <Text color="fg.muted">No calls recorded for this DAG in the last {days} days.</Text> : null}
      {found.data && found.data.length > 0 ? (
        <Card title="Anomalies" testId="dag-anomalies" actions={<Exports path="anomalies" params={{ ...params, dag_id: dagId, limit: 1000 }} name={`anomalies-${dagId}`} />}>
          <AnomalyList rows={found.data} onChange={() => setChanged((n) => n + 1)} shown={8} />
        </Card>
      ) : null}
      <SimpleGrid columns={{ base: 1, lg: 2 }} gap={3}>
        <Card title="Costliest tasks" testId="dag-tasks">
          <DataTable rows={data?.tasks} columns={TASK_COLUMNS} />
        </Card>
        <Card title="Models" testId="dag-models">
          <DataTable rows={data?.models} columns={MODEL_COLUMNS} />
        </Card>
      </SimpleGrid>
      <Card title="Runs" testId="dag-runs">
        <DataTable rows={[...runs].reverse()} columns={RUN_COLUMNS} />
      </Card>
    </Stacked>
  );
}

const TASK_COLUMNS: Column<TopRow>[] = [
  { key: "task", label: "Task", render: (r) => r.task_id },
  { key: "cost", label: "Cost", render: (r) => usd(r.cost_usd), numeric: true },
  { key: "calls", label: "Calls", render: (r) => count(r.calls), numeric: true },
  { key: "errors", label: "Errors", render: (r) => count(r.errors), numeric: true },
];
const MODEL_COLUMNS: Column<TopRow>[] = [
  { key: "model", label: "Provider / model", render: (r) => `${r.provider} · ${r.model}` },
  { key: "cost", label: "Cost", render: (r) => usd(r.cost_usd), numeric: true },
  { key: "calls", label: "Calls", render: (r) => count(r.calls), numeric: true },
  { key: "tokens", label: "Tokens", render: (r) => count(r.tokens), numeric: true },
];
const RUN_COLUMNS: Column<TopRun>[] = [
  { key: "run", label: "Run", render: (r) => <AirflowLink to={`${runPath(r.dag_id, r.run_id)}/plugin/supervisor-run`}>{r.run_id}</AirflowLink> },
  { key: "last", label: "Last call", render: (r) => when(r.last_at) },
  { key: "cost", label: "Cost", render: (r) => usd(r.cost_usd), numeric: true },
  { key: "calls", label: "Calls", render: (r) => count(r.calls), numeric: true },
  { key: "success", label: "Success", render: (r) => percent(r.success_rate), numeric: true },
  { key: "latency", label: "Mean latency", render: (r) => seconds(r.mean_latency_s), numeric: true },
];
