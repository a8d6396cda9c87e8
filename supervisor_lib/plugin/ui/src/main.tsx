// Registers Supervisor's views for Airflow's UI, which renders globalThis[<react_apps name>] with the route's
// {dagId, runId, taskId, mapIndex}. One component serves the sidebar page and the DAG, run and task-instance tabs
// (it picks the view from the route); the Home page tile is its own. Each is wrapped in the host's live Chakra
// system, so light/dark follows Airflow's switch.
import { ChakraProvider } from "@chakra-ui/react";
import type { ReactNode } from "react";

import { DagView } from "./DagView";
import { Overview } from "./Overview";
import { RunView } from "./RunView";
import { TaskView } from "./TaskView";
import { Tile } from "./Tile";

type RouteProps = { dagId?: string; runId?: string; taskId?: string; mapIndex?: string | number };

function Themed({ children }: { children: ReactNode }) {
  const system = (globalThis as { ChakraUISystem?: Parameters<typeof ChakraProvider>[0]["value"] }).ChakraUISystem;
  return system ? <ChakraProvider value={system}>{children}</ChakraProvider> : <>{children}</>;
}

export function Supervisor({ dagId, runId, taskId, mapIndex }: RouteProps) {
  let view: ReactNode;
  if (dagId && runId && taskId) {
    const index = mapIndex === undefined || mapIndex === null || mapIndex === "" ? -1 : Number(mapIndex);
    view = <TaskView dagId={dagId} runId={runId} taskId={taskId} mapIndex={Number.isNaN(index) ? -1 : index} />;
  } else if (dagId && runId) {
    view = <RunView dagId={dagId} runId={runId} />;
  } else if (dagId) {
    view = <DagView dagId={dagId} />;
  } else {
    view = <Overview />;
  }
  return <Themed>{view}</Themed>;
}

export function SupervisorTile() {
  return <Themed><Tile /></Themed>;
}

const registry = globalThis as Record<string, unknown>;
registry["Supervisor"] = Supervisor;
registry["Supervisor spend"] = SupervisorTile;
