// The Supervisor tab of a DAG run: its calls per task, cost, tokens, a time line of the calls, retries and failovers.
import { Box, Flex, HStack, SimpleGrid, Text } from "@chakra-ui/react";
import { useMemo, useState } from "react";

import { AnomalyList } from "./Anomalies";
import { useApi, useStamp } from "./api";
import { count, seconds, usd, when } from "./format";
import { DECISION_COLUMNS } from "./Overview";
import { AirflowLink, Card, LONG_AGO, type Column, DataTable, Exports, Kpi, Loading, Outcome, Problem, Stacked, taskPath } from "./parts";
import type { Anomaly, Call, RunData } from "./types";

const BAR_COLORS: Record<string, string> = { answered: "green.500", cached: "blue.400", rejected: "orange.400", failed: "red.500" };

export function RunView({ dagId, runId }: { dagId: string; runId: string }) {
  const stamp = useStamp();
  const path = `dags/${encodeURIComponent(dagId)}/runs/${encodeURIComponent(runId)}`;
  const { data, error, loading } = useApi<RunData>(path, {}, stamp);
  const [changed, setChanged] = useState(0);
  const span = useMemo(LONG_AGO, [stamp]);
  const found = useApi<Anomaly[]>("anomalies", { ...span, dag_id: dagId, run_id: runId }, `${stamp}|${changed}`);
  const calls = data?.calls ?? [];
  const cost = calls.reduce((sum, c) => sum + (c.cost_usd ?? 0), 0);
  const tokens = calls.reduce((sum, c) => sum + c.input_tokens + c.output_tokens + c.cache_read_tokens + c.cache_write_tokens, 0);
  const retries = calls.filter((c) => c.attempt > 1 || c.try_number > 1).length;
  const failovers = (data?.decisions ?? []).reduce((sum, d) => sum + d.failovers, 0);

  return (
    <Stacked>
      <HStack justify="space-between">
        <Loading loading={loading} />
        <Exports path={path} params={{}} name={`run-${runId}`} />
      </HStack>
      <Problem error={error} />
      <SimpleGrid columns={{ base: 2, md: 5 }} gap={3}>
        <Kpi testId="run-cost" label="Cost" value={usd(cost)} />
        <Kpi testId="run-calls" label="Calls" value={count(calls.length)}
          note={`${calls.filter((c) => c.outcome === "failed" || c.outcome === "rejected").length} failed or rejected`} />
        <Kpi testId="run-tokens" label="Tokens" value={count(tokens)} />
        <Kpi testId="run-retries" label="Retries" value={count(retries)} />
        <Kpi testId="run-failovers" label="Failovers" value={count(failovers)} />
      </SimpleGrid>
      {data && calls.length === 0 ? <Text color="fg.muted">This run made no model calls (yet).</Text> : null}
      {found.data && found.data.length > 0 ? (
        <Card title="Anomalies" testId="run-anomalies">
          <AnomalyList rows={found.data} onChange={() => setChanged((n) => n + 1)} />
        </Card>
      ) : null}
      {calls.length > 0 ? <Card title="Time line" testId="run-timeline"><Timeline calls={calls} dagId={dagId} runId={runId} /></Card> : null}
      <Card title="Per task" testId="run-tasks">
        <DataTable rows={data?.tasks} columns={[
          { key: "task", label: "Task", render: (t) => (
            <AirflowLink to={`${taskPath(dagId, runId, t.task_id, t.map_index)}/plugin/supervisor-task`}>
              {t.task_id}{t.map_index >= 0 ? ` [${t.map_index}]` : ""}
            </AirflowLink>) },
          { key: "calls", label: "Calls", render: (t) => count(t.calls), numeric: true },
          { key: "cost", label: "Cost", render: (t) => usd(t.cost_usd), numeric: true },
          { key: "tokens", label: "Tokens", render: (t) => count(t.tokens), numeric: true },
          { key: "retries", label: "Retries", render: (t) => count(t.retries), numeric: true },
          { key: "failed", label: "Failed", render: (t) => count(t.failed), numeric: true },
        ]} />
      </Card>
      <Card title="Calls" testId="run-calls-table">
        <DataTable rows={calls} columns={CALL_COLUMNS} />
      </Card>
      {data && data.decisions.length > 0 ? (
        <Card title="Routing decisions" testId="run-decisions">
          <DataTable rows={data.decisions} columns={DECISION_COLUMNS} />
        </Card>
      ) : null}
    </Stacked>
  );
}

const CALL_COLUMNS: Column<Call>[] = [
  { key: "at", label: "Started", render: (c) => when(c.started_at) },
  { key: "task", label: "Task", render: (c) => `${c.task_id}${c.map_index >= 0 ? ` [${c.map_index}]` : ""}` },
  { key: "try", label: "Try · attempt", render: (c) => `${c.try_number} · ${c.attempt}` },
  { key: "model", label: "Model", render: (c) => `${c.provider} · ${c.model}` },
  { key: "outcome", label: "Outcome", render: (c) => <Outcome outcome={c.outcome} /> },
  { key: "latency", label: "Latency", render: (c) => seconds(c.duration_s), numeric: true },
  { key: "tokens", label: "Tokens in / out", render: (c) => `${count(c.input_tokens + c.cache_read_tokens)} / ${count(c.output_tokens)}`, numeric: true },
  { key: "cost", label: "Cost", render: (c) => (c.cost_basis === "unpriced" ? "unpriced" : usd(c.cost_usd)), numeric: true },
  { key: "error", label: "Error", render: (c) => (c.error_type ? `${c.error_type}${c.error_message ? `: ${c.error_message}` : ""}` : "") },
];

function Timeline({ calls, dagId, runId }: { calls: Call[]; dagId: string; runId: string }) {
  const starts = calls.map((c) => new Date(c.started_at ?? 0).getTime());
  const first = Math.min(...starts);
  const last = Math.max(...calls.map((c, i) => starts[i] + c.duration_s * 1000));
  const span = Math.max(last - first, 1);
  const rows = new Map<string, { label: string; path: string; calls: { call: Call; at: number }[] }>();
  calls.forEach((call, i) => {
    const key = `${call.task_id}|${call.map_index}`;
    if (!rows.has(key)) {
      rows.set(key, {
        label: `${call.task_id}${call.map_index >= 0 ? ` [${call.map_index}]` : ""}`,
        path: `${taskPath(dagId, runId, call.task_id, call.map_index)}/plugin/supervisor-task`,
        calls: [],
      });
    }
    rows.get(key)!.calls.push({ call, at: starts[i] });
  });
  return (
    <Box>
      {[...rows.values()].map((row) => (
        <Flex key={row.path} align="center" gap={2} mb={1}>
          <Box width="180px" flexShrink={0} fontSize="xs" truncate>
            <AirflowLink to={row.path}>{row.label}</AirflowLink>
          </Box>
          <Box position="relative" flex="1" height="16px" bg="bg.muted" borderRadius="sm">
            {row.calls.map(({ call, at }) => (
              <Box
                key={call.call_id}
                position="absolute"
                top="2px"
                height="12px"
                borderRadius="xs"
                bg={BAR_COLORS[call.outcome] ?? "gray.400"}
                left={`${((at - first) / span) * 100}%`}
                width={`max(3px, ${((call.duration_s * 1000) / span) * 100}%)`}
                title={`${call.provider}/${call.model} · ${call.outcome} · ${seconds(call.duration_s)} · ${usd(call.cost_usd)}`}
              />
            ))}
          </Box>
        </Flex>
      ))}
      <Text fontSize="xs" color="fg.muted" mt={1}>
        {when(new Date(first).toISOString())} → {when(new Date(last).toISOString())} ({seconds(span / 1000)}); green answered,
        blue re-used, orange rejected, red failed.
      </Text>
    </Box>
  );
}
