// Model experiments (A/B arms of supervised coding tasks): per-arm pass rate, cost, tokens, latency and iterations,
// each with its 95% interval, and the verdict against the first (baseline) arm. Shown on the Supervisor page.
import { Badge, HStack, NativeSelect, Text } from "@chakra-ui/react";
import { useState } from "react";

import { useApi } from "./api";
import { count, percent, seconds, usd, when } from "./format";
import { Card, type Column, DataTable, Exports, Problem } from "./parts";
import type { Estimate, Experiment, ExperimentArm } from "./types";

/** "83% [44%, 97%]": an estimate with its interval, each end in the estimate's own format. */
function interval(value: Estimate, format: (n: number) => string): string {
  if (value.estimate === null) return "–";
  const text = format(value.estimate);
  return value.low === null || value.high === null ? text : `${text} [${format(value.low)}, ${format(value.high)}]`;
}

const round1 = (n: number) => n.toFixed(1);

/** The per-arm table's columns; the first arm, the one the others are compared with, says so. */
const armColumns = (baseline: string | undefined): Column<ExperimentArm>[] => [
  {
    key: "arm", label: "Arm",
    render: (a) => (a.arm === baseline ? <HStack gap={1}>{a.arm}<Badge size="sm" variant="outline">baseline</Badge></HStack> : a.arm),
  },
  { key: "models", label: "Model", render: (a) => a.models.join(", ") },
  { key: "runs", label: "Runs", render: (a) => count(a.runs), numeric: true },
  { key: "pass", label: "Pass rate", render: (a) => interval(a.pass_rate, percent), numeric: true },
  { key: "cost", label: "Cost / task", render: (a) => interval(a.cost_usd, usd), numeric: true },
  { key: "tokens", label: "Tokens / task", render: (a) => interval(a.tokens, count), numeric: true },
  { key: "latency", label: "Latency", render: (a) => interval(a.duration_s, seconds), numeric: true },
  { key: "iterations", label: "Iterations", render: (a) => interval(a.iterations, round1), numeric: true },
];

const STATE_COLORS: Record<string, string> = { higher: "green", no_loss: "green", lower: "red", unknown: "gray" };
const STATE_LABELS: Record<string, string> = {
  higher: "passes more", no_loss: "no measurable loss", lower: "passes less", unknown: "not enough runs",
};

export function Experiments({ stamp }: { stamp: string }) {
  const [chosen, setChosen] = useState<string | undefined>(undefined);
  const report = useApi<Experiment>("experiments", { experiment: chosen }, stamp);
  const data = report.data;
  const names = data?.experiments ?? [];
  return (
    <Card
      title="Model experiments"
      testId="experiments"
      actions={
        <HStack gap={2} wrap="wrap">
          {names.length > 1 ? (
            <NativeSelect.Root size="xs" width="auto">
              <NativeSelect.Field aria-label="experiment" value={data?.experiment ?? ""} onChange={(e) => setChosen(e.target.value)}>
                {names.map((name) => <option key={name} value={name}>{name}</option>)}
              </NativeSelect.Field>
              <NativeSelect.Indicator />
            </NativeSelect.Root>
          ) : null}
          <Exports path="experiments" params={{ experiment: data?.experiment }} name="experiment" />
        </HStack>
      }
    >
      <Problem error={report.error} />
      {data && data.experiment === null ? (
        <Text fontSize="sm" color="fg.muted">
          No experiment has recorded runs yet: give a coding task an experiment with two arms or more (docs/experiments.md).
        </Text>
      ) : null}
      {data && data.experiment !== null ? (
        <>
          <Text fontSize="xs" color="fg.muted" mb={2}>
            {data.experiment}: {count(data.runs)} runs in {data.dags.join(", ")}, {when(data.first_at)} – {when(data.last_at)}.
            Intervals: {Math.round(data.confidence * 100)}% (Wilson for the pass rate, bootstrap for the means).
          </Text>
          <DataTable rows={data.arms} columns={armColumns(data.arms[0]?.arm)} testId="experiment-arms" />
          {data.comparisons.map((c) => (
            <HStack key={c.arm} gap={2} mt={2} align="start">
              <Badge colorPalette={STATE_COLORS[c.pass_rate] ?? "gray"}>{c.arm} vs {c.baseline}: {STATE_LABELS[c.pass_rate] ?? c.pass_rate}</Badge>
              <Text fontSize="sm" data-testid="experiment-verdict">{c.verdict}</Text>
            </HStack>
          ))}
          {data.comparisons.length === 0 ? <Text fontSize="sm" mt={2}>{data.verdict}</Text> : null}
        </>
      ) : null}
    </Card>
  );
}
