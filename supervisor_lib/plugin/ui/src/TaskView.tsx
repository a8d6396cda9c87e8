// The Supervisor tab of a task instance: the transcript. Every attempt of every try, in order (what was asked, what
// came back, tokens, cost, latency, errors) and, for a coding task, the context chosen, each iteration, the
// validation output, the review, the approval and the final patch.
import { Badge, Box, Code, Flex, Heading, HStack, SimpleGrid, Stack, Text } from "@chakra-ui/react";
import { type ReactNode, useMemo, useState } from "react";

import { AnomalyList } from "./Anomalies";
import { useApi, useStamp } from "./api";
import { count, seconds, usd, when } from "./format";
import { Card, Kpi, LONG_AGO, Loading, Outcome, Problem, Stacked } from "./parts";
import type { Anomaly, Attempt, Message, TaskData } from "./types";

export function TaskView({ dagId, runId, taskId, mapIndex }: { dagId: string; runId: string; taskId: string; mapIndex: number }) {
  const stamp = useStamp();
  const path = ["dags", dagId, "runs", runId, "tasks", taskId, String(mapIndex)].map(encodeURIComponent).join("/");
  const { data, error, loading } = useApi<TaskData>(path, {}, stamp);
  const [changed, setChanged] = useState(0);
  const span = useMemo(LONG_AGO, [stamp]);
  const found = useApi<Anomaly[]>("anomalies", { ...span, dag_id: dagId, run_id: runId, task_id: taskId },
    `${stamp}|${changed}`);
  const calls = data?.calls ?? [];
  const artifacts = data?.artifacts ?? {};
  const cost = calls.reduce((sum, c) => sum + (c.cost_usd ?? 0), 0);
  const recorded = calls.some((c) => c.content !== null);

  return (
    <Stacked>
      <Loading loading={loading} />
      <Problem error={error} />
      <SimpleGrid columns={{ base: 2, md: 4 }} gap={3}>
        <Kpi testId="task-calls" label="Model calls" value={count(calls.length)} />
        <Kpi testId="task-cost" label="Cost" value={usd(cost)} />
        <Kpi testId="task-tokens" label="Tokens in / out"
          value={`${count(calls.reduce((s, c) => s + c.input_tokens + c.cache_read_tokens, 0))} / ${count(calls.reduce((s, c) => s + c.output_tokens, 0))}`} />
        <Kpi testId="task-time" label="Time in calls" value={seconds(calls.reduce((s, c) => s + c.duration_s, 0))} />
      </SimpleGrid>
      {data && calls.length === 0 && Object.keys(artifacts).length === 0 ? (
        <Text color="fg.muted">No model call was recorded for this task instance (yet).</Text>
      ) : null}
      {data && calls.length > 0 && !recorded ? (
        <Text color="fg.muted" fontSize="sm">
          Prompts and answers were not recorded (SUPERVISOR_RECORD_CONTENT=off); the numbers are.
        </Text>
      ) : null}
      {found.data && found.data.length > 0 ? (
        <Card title="Anomalies" testId="task-anomalies">
          <AnomalyList rows={found.data} onChange={() => setChanged((n) => n + 1)} />
        </Card>
      ) : null}
      <Coding artifacts={artifacts} />
      <Card title="Conversation" testId="transcript">
        <Stack gap={3}>
          {calls.map((call) => <AttemptView key={call.call_id} call={call} />)}
        </Stack>
      </Card>
    </Stacked>
  );
}

function AttemptView({ call }: { call: Attempt }) {
  const request = call.content?.request;
  const response = call.content?.response;
  return (
    <Box borderWidth="1px" borderColor="border" borderRadius="md" p={3} data-testid="attempt">
      <Flex gap={2} wrap="wrap" align="center" mb={2}>
        <Badge variant="outline">try {call.try_number} · attempt {call.attempt}</Badge>
        <Outcome outcome={call.outcome} />
        <Text fontSize="sm" fontWeight="medium">{call.provider} · {call.model}</Text>
        <Text fontSize="xs" color="fg.muted">
          {when(call.started_at)} · {seconds(call.duration_s)} · {count(call.input_tokens + call.cache_read_tokens)} in
          {call.cache_read_tokens ? ` (${count(call.cache_read_tokens)} from cache)` : ""} / {count(call.output_tokens)} out ·{" "}
          {call.cost_usd === null ? "unpriced" : usd(call.cost_usd)}
        </Text>
      </Flex>
      {call.error_type ? (
        <Text fontSize="sm" color="fg.error" mb={2}>{call.error_type}{call.error_message ? `: ${call.error_message}` : ""}</Text>
      ) : null}
      {request ? (
        <Stack gap={2}>
          {request.system ? <Turn role="system" content={request.system} /> : null}
          {(request.messages ?? []).map((message: Message, index: number) => <Turn key={index} role={message.role} content={message.content} />)}
          <Text fontSize="xs" color="fg.muted">
            max_tokens {request.max_tokens ?? "–"}{request.temperature !== null && request.temperature !== undefined ? ` · temperature ${request.temperature}` : ""}
            {request.output_schema ? " · structured output" : ""}
          </Text>
        </Stack>
      ) : null}
      {response ? (
        <Box mt={2}>
          <Turn role="assistant" content={response.text ?? ""} answer />
          {response.output !== null && response.output !== undefined ? <Json value={response.output} label="structured output" /> : null}
          <Text fontSize="xs" color="fg.muted">
            {response.stop_reason ? `stop: ${response.stop_reason}` : ""}{response.request_id ? ` · request ${response.request_id}` : ""}
          </Text>
        </Box>
      ) : null}
      {call.content?.rejected ? <Text fontSize="sm" color="fg.warning" mt={2}>Rejected: {call.content.rejected}</Text> : null}
    </Box>
  );
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((block) => (block && typeof block === "object" && "text" in block ? String((block as { text: unknown }).text) : JSON.stringify(block)))
      .join("\n");
  }
  return JSON.stringify(content, null, 2);
}

function Turn({ role, content, answer }: { role: string; content: unknown; answer?: boolean }) {
  const text = textOf(content);
  const long = text.length > 1500;
  const body = (
    <Box as="pre" whiteSpace="pre-wrap" wordBreak="break-word" fontSize="xs" fontFamily="mono" m={0}>{text}</Box>
  );
  return (
    <Box borderLeftWidth="3px" borderColor={answer ? "green.500" : role === "system" ? "purple.400" : "blue.400"} pl={2} data-role={role}>
      <Text fontSize="xs" fontWeight="semibold" color="fg.muted" textTransform="uppercase">{role}</Text>
      {long ? (
        <details>
          <summary style={{ cursor: "pointer", fontSize: "12px" }}>{text.slice(0, 160).replace(/\s+/gu, " ")}… ({count(text.length)} characters)</summary>
          {body}
        </details>
      ) : body}
    </Box>
  );
}

function Json({ value, label }: { value: unknown; label: string }) {
  return (
    <details>
      <summary style={{ cursor: "pointer", fontSize: "12px" }}>{label}</summary>
      <Box as="pre" whiteSpace="pre-wrap" fontSize="xs" fontFamily="mono" m={0}>{JSON.stringify(value, null, 2)}</Box>
    </details>
  );
}

type Iteration = {
  number: number; outcome: string; edit_summary: string; files_changed: string[]; error: string | null;
  validation: { exit_code?: number; passed?: boolean; killed_reason?: string | null; isolation?: string; duration_s?: number } | null;
  review: { decision?: string; summary?: string } | null; duration_s: number; tokens: number; cost_usd: number;
};

function Coding({ artifacts }: { artifacts: Record<string, unknown> }) {
  if (Object.keys(artifacts).length === 0) return null;
  const context = artifacts["context.json"] as { files?: string[]; omitted?: string[]; tokens?: number } | undefined;
  const iterations = (artifacts["iterations.json"] as Iteration[] | undefined) ?? [];
  const review = artifacts["review.json"] as { decision?: string; summary?: string; reviewer?: string; comments?: { file?: string; line?: number; message?: string }[] } | undefined;
  const approval = artifacts["approval.json"] as { approved?: boolean | null; chosen_options?: string[]; by?: unknown; at?: string } | undefined;
  const patch = artifacts["patch.diff"] as string | undefined;
  const logs = Object.keys(artifacts).filter((name) => name.startsWith("validation-")).sort((a, b) => parseInt(a.slice(11)) - parseInt(b.slice(11)));
  const report = artifacts["report.json"];

  return (
    <Stack gap={3} data-testid="coding">
      {context ? (
        <Card title="Context given to the model" testId="context">
          <Text fontSize="xs" color="fg.muted">{count(context.tokens ?? 0)} tokens from {context.files?.length ?? 0} files</Text>
          <HStack wrap="wrap" gap={1} mt={1}>{(context.files ?? []).map((file) => <Code key={file} fontSize="xs">{file}</Code>)}</HStack>
          {context.omitted && context.omitted.length > 0 ? (
            <Box mt={2} fontSize="xs" color="fg.muted">Left out: {context.omitted.join("; ")}</Box>
          ) : null}
        </Card>
      ) : null}
      {iterations.length > 0 ? (
        <Card title="Iterations" testId="iterations">
          <Stack gap={2}>
            {iterations.map((it) => (
              <Box key={it.number} borderLeftWidth="3px" borderColor={it.outcome === "passed" || it.outcome === "approved" ? "green.500" : "orange.400"} pl={2}>
                <Text fontSize="sm" fontWeight="medium">
                  {it.number}. {it.outcome} · {seconds(it.duration_s)} · {count(it.tokens)} tokens · {usd(it.cost_usd)}
                </Text>
                {it.edit_summary ? <Text fontSize="sm">{it.edit_summary}</Text> : null}
                {it.files_changed.length > 0 ? <Text fontSize="xs" color="fg.muted">changed: {it.files_changed.join(", ")}</Text> : null}
                {it.error ? <Text fontSize="xs" color="fg.error">{it.error}</Text> : null}
                {it.validation ? (
                  <Text fontSize="xs" color="fg.muted">
                    validation ({it.validation.isolation ?? "?"} sandbox): {it.validation.passed ? "passed" : "failed"},{" "}
                    {it.validation.killed_reason ?? `exit code ${it.validation.exit_code}`}
                    {it.validation.duration_s !== undefined ? ` in ${seconds(it.validation.duration_s)}` : ""}
                  </Text>
                ) : null}
                {it.review?.decision ? <Text fontSize="xs" color="fg.muted">review: {it.review.decision} {it.review.summary ? `· ${it.review.summary}` : ""}</Text> : null}
                {artifacts[`validation-${it.number}.log`] ? (
                  <details>
                    <summary style={{ cursor: "pointer", fontSize: "12px" }}>validation output</summary>
                    <Box as="pre" whiteSpace="pre-wrap" fontSize="xs" fontFamily="mono" m={0} maxH="320px" overflow="auto">
                      {String(artifacts[`validation-${it.number}.log`])}
                    </Box>
                  </details>
                ) : null}
              </Box>
            ))}
          </Stack>
        </Card>
      ) : logs.length > 0 ? (
        <Card title="Validation output">
          {logs.map((name) => <Box key={name} as="pre" fontSize="xs" fontFamily="mono" whiteSpace="pre-wrap">{String(artifacts[name])}</Box>)}
        </Card>
      ) : null}
      {review ? (
        <Card title="Review" testId="review">
          <Text fontSize="sm"><Badge colorPalette={review.decision === "approve" ? "green" : "orange"}>{review.decision}</Badge>{" "}
            {review.reviewer ? `by ${review.reviewer}: ` : ""}{review.summary}</Text>
          {(review.comments ?? []).map((c, i) => (
            <Text key={i} fontSize="xs" mt={1}>{[c.file, c.line].filter((x) => x !== undefined && x !== null).join(":")}{c.file ? ": " : ""}{c.message}</Text>
          ))}
        </Card>
      ) : null}
      {approval ? (
        <Card title="Approval" testId="approval">
          <Text fontSize="sm">
            <Badge colorPalette={approval.approved ? "green" : approval.approved === false ? "red" : "gray"}>
              {approval.approved ? "approved" : approval.approved === false ? "rejected" : (approval.chosen_options ?? []).join(", ")}
            </Badge>{" "}
            by {typeof approval.by === "object" && approval.by !== null ? JSON.stringify(approval.by) : String(approval.by ?? "someone")} · {when(approval.at)}
          </Text>
        </Card>
      ) : null}
      {report !== undefined ? <Card title="Report"><Json value={report} label="the validated report" /></Card> : null}
      {patch ? <Card title="Patch" testId="patch"><Diff text={patch} /></Card> : null}
    </Stack>
  );
}

function Diff({ text }: { text: string }) {
  const lines: ReactNode[] = text.split("\n").map((line, index) => {
    const color = line.startsWith("+++") || line.startsWith("---") ? "fg.muted"
      : line.startsWith("+") ? "fg.success" : line.startsWith("-") ? "fg.error" : line.startsWith("@@") ? "fg.info" : undefined;
    const bg = line.startsWith("+") && !line.startsWith("+++") ? "bg.success" : line.startsWith("-") && !line.startsWith("---") ? "bg.error" : undefined;
    return <Box key={index} color={color} bg={bg} px={1} minH="1em">{line}</Box>;
  });
  return (
    <Box as="pre" fontSize="xs" fontFamily="mono" whiteSpace="pre" overflowX="auto" m={0} data-testid="diff">
      <Heading size="xs" srOnly>diff</Heading>
      {lines}
    </Box>
  );
}
