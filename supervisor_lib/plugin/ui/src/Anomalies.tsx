// The anomaly scan's findings: a list with reasons, links into the run and the task instance's transcript, and
// acknowledge / mute (which need edit access to the DAG; the API says so otherwise).
import { Badge, Box, Button, Flex, HStack, Stack, Text } from "@chakra-ui/react";
import { useState } from "react";

import { ApiError, sendJson } from "./api";
import { when } from "./format";
import { AirflowLink, runPath, taskPath } from "./parts";
import type { Anomaly } from "./types";

export const KIND_LABELS: Record<string, string> = {
  context_blowup: "context blow-up", latency_spike: "latency spike", runaway_output: "runaway output",
  error_burst: "error burst", model_change: "model change", spend_spike: "spend spike",
  latency_p95: "p95 latency", budget_runout: "budget running out",
};

function scopeOf(finding: Anomaly): string {
  if (finding.dag_id && finding.task_id) return `task:${finding.dag_id}.${finding.task_id}`;
  if (finding.dag_id) return `dag:${finding.dag_id}`;
  if (finding.provider) return `provider:${finding.provider}`;
  return "*";
}

function Where({ finding }: { finding: Anomaly }) {
  if (finding.dag_id && finding.run_id && finding.task_id) {
    const path = `${taskPath(finding.dag_id, finding.run_id, finding.task_id, finding.map_index ?? -1)}/plugin/supervisor-task`;
    return <AirflowLink to={path}>{finding.dag_id} · {finding.task_id}</AirflowLink>;
  }
  if (finding.dag_id && finding.run_id) return <AirflowLink to={runPath(finding.dag_id, finding.run_id)}>{finding.dag_id}</AirflowLink>;
  if (finding.dag_id) return <AirflowLink to={`dags/${encodeURIComponent(finding.dag_id)}/plugin/supervisor-dag`}>{finding.dag_id}</AirflowLink>;
  return <Text as="span">{finding.provider ?? finding.model ?? finding.subject}</Text>;
}

/** Findings of one group (a burst of one provider in an hour, one task's blow-ups in a day, ...), newest first. */
type Group = { key: string; findings: Anomaly[] };

function grouped(rows: Anomaly[]): Group[] {
  const groups = new Map<string, Anomaly[]>();
  for (const row of rows) groups.set(row.group_key, [...(groups.get(row.group_key) ?? []), row]);
  return [...groups.entries()].map(([key, findings]) => ({ key, findings }));
}

/** The findings, one entry per group (what one alert message holds), the first ``shown`` groups at first. */
export function AnomalyList({ rows, onChange, empty = "No anomalies in this range.", shown = 15 }: {
  rows: Anomaly[] | undefined; onChange: () => void; empty?: string; shown?: number;
}) {
  const [problem, setProblem] = useState<string | null>(null);
  const [all, setAll] = useState(false);
  const [open, setOpen] = useState<Record<string, boolean>>({});
  if (!rows) return null;
  if (rows.length === 0) return <Text fontSize="sm" color="fg.muted">{empty}</Text>;
  const act = async (work: () => Promise<unknown>) => {
    try {
      setProblem(null);
      await work();
      onChange();
    } catch (error) {
      setProblem(error instanceof ApiError ? error.message : String(error));
    }
  };
  const groups = grouped(rows);
  return (
    <Stack gap={2} data-testid="anomaly-list">
      {problem ? <Text fontSize="xs" color="fg.error" role="alert">{problem}</Text> : null}
      {(all ? groups : groups.slice(0, shown)).map(({ key, findings }) => {
        const finding = findings[0];
        const pending = findings.filter((f) => f.status === "open");
        const status = pending.length ? "open" : "acknowledged";
        const more = findings.length - 1;
        return (
          <Box key={key} borderLeftWidth="3px" pl={2} data-testid="anomaly" data-kind={finding.kind}
            borderColor={status === "open" ? "red.500" : "border"} opacity={status === "open" ? 1 : 0.7}>
            <Flex gap={2} wrap="wrap" align="center">
              <Badge colorPalette="red" variant={status === "open" ? "solid" : "outline"}>
                {KIND_LABELS[finding.kind] ?? finding.kind}{more ? ` × ${findings.length}` : ""}
              </Badge>
              <Text fontSize="xs" color="fg.muted">{when(finding.occurred_at)}</Text>
              <Text fontSize="sm"><Where finding={finding} /></Text>
              {status === "acknowledged" ? (
                <Text fontSize="xs" color="fg.muted">acknowledged by {finding.status_by}</Text>
              ) : null}
              <HStack gap={1} ml="auto">
                <Button size="2xs" variant="outline" onClick={() => act(() => Promise.all(
                  (status === "open" ? pending : findings).map((f) => sendJson("POST", `anomalies/${f.finding_id}/status`,
                    { status: status === "open" ? "acknowledged" : "open" })),
                ))}>
                  {status === "open" ? "Acknowledge" : "Reopen"}
                </Button>
                <Button size="2xs" variant="ghost" title={`Mute ${KIND_LABELS[finding.kind] ?? finding.kind} for ${scopeOf(finding)} for 7 days`}
                  onClick={() => act(() => sendJson("POST", "anomalies/mutes", { kind: finding.kind, scope: scopeOf(finding), days: 7 }))}>
                  Mute 7 d
                </Button>
              </HStack>
            </Flex>
            <Text fontSize="sm" mt={1}>{finding.reason}</Text>
            {more ? (
              <Button size="2xs" variant="plain" px={0} color="fg.muted" onClick={() => setOpen({ ...open, [key]: !open[key] })}>
                {open[key] ? "hide" : `and ${more} more of this ${finding.kind === "error_burst" ? "burst" : "group"}`}
              </Button>
            ) : null}
            {open[key] ? (
              <Stack gap={0} pl={3}>
                {findings.slice(1).map((f) => (
                  <Text key={f.finding_id} fontSize="xs">{when(f.occurred_at)} · <Where finding={f} /> · {f.reason}</Text>
                ))}
              </Stack>
            ) : null}
          </Box>
        );
      })}
      {groups.length > shown ? (
        <Button size="xs" variant="outline" alignSelf="start" onClick={() => setAll(!all)}>
          {all ? "Show fewer" : `Show all ${groups.length} groups (${rows.length} findings)`}
        </Button>
      ) : null}
    </Stack>
  );
}
