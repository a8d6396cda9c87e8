// Building blocks shared by the views, all made of the host's Chakra UI (so they follow its theme).
import { Badge, Box, Flex, Heading, HStack, Link, Spinner, Stack, Table, Text } from "@chakra-ui/react";
import type { ReactNode } from "react";

import { ApiError, apiUrl, type Params, uiUrl } from "./api";

type RouterGlobals = { useNavigate?: () => (to: string) => void };

/** A link into Airflow's own pages, followed inside the single-page app (a full load on ctrl/middle click). */
export function AirflowLink({ to, children }: { to: string; children: ReactNode }) {
  const router = (globalThis as { ReactRouterDOM?: RouterGlobals }).ReactRouterDOM;
  const navigate = router?.useNavigate?.();
  return (
    <Link
      href={uiUrl(to)}
      color="fg.info"
      onClick={(event) => {
        if (!navigate || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        navigate(`/${to}`);
      }}
    >
      {children}
    </Link>
  );
}

/** The widest range the API allows, ending now: for the findings of one run or task, whenever they occurred. */
export function LONG_AGO(): { start: string; end: string } {
  const end = new Date(Date.now() + 3600_000);
  return { start: new Date(end.getTime() - 399 * 86400_000).toISOString(), end: end.toISOString() };
}

export function runPath(dagId: string, runId: string): string {
  return `dags/${encodeURIComponent(dagId)}/runs/${encodeURIComponent(runId)}`;
}

export function taskPath(dagId: string, runId: string, taskId: string, mapIndex: number): string {
  const base = `${runPath(dagId, runId)}/tasks/${encodeURIComponent(taskId)}`;
  return mapIndex >= 0 ? `${base}/mapped/${mapIndex}` : base;
}

export function Card({ title, actions, children, testId }: {
  title: string; actions?: ReactNode; children: ReactNode; testId?: string;
}) {
  return (
    <Box borderWidth="1px" borderColor="border" borderRadius="md" p={3} bg="bg.panel" data-testid={testId} minW={0}>
      <Flex justify="space-between" align="center" mb={2} gap={2} wrap="wrap">
        <Heading size="sm">{title}</Heading>
        {actions}
      </Flex>
      {children}
    </Box>
  );
}

export function Kpi({ label, value, note, testId }: { label: string; value: string; note?: ReactNode; testId?: string }) {
  return (
    <Box borderWidth="1px" borderColor="border" borderRadius="md" p={3} bg="bg.panel" data-testid={testId}>
      <Text fontSize="xs" color="fg.muted" textTransform="uppercase" letterSpacing="wide">{label}</Text>
      <Text fontSize="xl" fontWeight="semibold" lineHeight="short" data-testid={testId && `${testId}-value`}>{value}</Text>
      {note ? <Text fontSize="xs" color="fg.muted">{note}</Text> : null}
    </Box>
  );
}

/** CSV and JSON downloads of what a table or chart shows, with the current filters. */
export function Exports({ path, params, name }: { path: string; params: Params; name: string }) {
  return (
    <HStack gap={2} fontSize="xs">
      <Link href={apiUrl(path, { ...params, format: "csv" })} download={`supervisor-${name}.csv`} color="fg.info">CSV</Link>
      <Link href={apiUrl(path, { ...params, format: "json" })} target="_blank" rel="noreferrer" color="fg.info">JSON</Link>
    </HStack>
  );
}

export function Problem({ error }: { error?: ApiError }) {
  if (!error) return null;
  const what =
    error.status === 401 || error.status === 403
      ? "You may not see this (sign in again, or ask for access to these DAGs)."
      : error.status === 400
        ? `Bad filter: ${error.message}`
        : `The analytics store did not answer: ${error.message}`;
  return (
    <Box borderWidth="1px" borderColor="border.error" color="fg.error" borderRadius="md" p={2} fontSize="sm" role="alert">
      {what}
    </Box>
  );
}

export function Loading({ loading }: { loading: boolean }) {
  return loading ? <Spinner size="xs" color="fg.muted" aria-label="loading" /> : null;
}

export type Column<T> = { key: string; label: string; render: (row: T) => ReactNode; numeric?: boolean };

export function DataTable<T>({ rows, columns, empty = "Nothing recorded in this range.", testId }: {
  rows: T[] | undefined; columns: Column<T>[]; empty?: string; testId?: string;
}) {
  if (!rows) return null;
  if (rows.length === 0) return <Text fontSize="sm" color="fg.muted">{empty}</Text>;
  return (
    <Box overflowX="auto">
      <Table.Root size="sm" data-testid={testId}>
        <Table.Header>
          <Table.Row>
            {columns.map((column) => (
              <Table.ColumnHeader key={column.key} textAlign={column.numeric ? "end" : "start"}>{column.label}</Table.ColumnHeader>
            ))}
          </Table.Row>
        </Table.Header>
        <Table.Body>
          {rows.map((row, index) => (
            <Table.Row key={index}>
              {columns.map((column) => (
                <Table.Cell key={column.key} textAlign={column.numeric ? "end" : "start"}>{column.render(row)}</Table.Cell>
              ))}
            </Table.Row>
          ))}
        </Table.Body>
      </Table.Root>
    </Box>
  );
}

const OUTCOME_COLORS: Record<string, string> = { answered: "green", cached: "blue", rejected: "orange", failed: "red" };

export function Outcome({ outcome }: { outcome: string }) {
  return <Badge colorPalette={OUTCOME_COLORS[outcome] ?? "gray"}>{outcome}</Badge>;
}

export function Stacked({ children }: { children: ReactNode }) {
  return <Stack gap={4} p={{ base: 2, md: 4 }} maxW="100%">{children}</Stack>;
}
