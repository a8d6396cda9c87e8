// The shapes the plugin API answers with (supervisor_lib/analytics/queries.py and operations.py).
export type RangeInfo = { start: string; end: string; grain: "hour" | "day"; bucket_s: number };

export type Overview = {
  range: RangeInfo;
  spend_usd: number;
  estimated_usd: number;
  unpriced_calls: number;
  calls: number;
  success_rate: number | null;
  failed: number;
  rejected: number;
  latency_p50_s: number | null;
  latency_p95_s: number | null;
  tokens: { input: number; cache_read: number; cache_write: number; output: number };
  prompt_cache_savings_usd: number;
  cached_answers: number;
  cached_answers_saved_usd: number;
  retries: number;
  failovers: number | null;
};

export type Series = {
  range: RangeInfo;
  metric: string;
  group_by: string;
  times: number[];
  series: { name: string; values: (number | null)[] }[];
};

export type Facets = { provider: string[]; model: string[]; dag_id: string[]; team: string[]; tag: string[] };

export type TopRow = {
  dag_id: string; task_id?: string; provider?: string; model?: string;
  cost_usd: number; calls: number; tokens: number; errors: number;
};

export type TopRun = {
  dag_id: string; run_id: string; cost_usd: number; calls: number; tokens: number; errors: number;
  success_rate: number | null; mean_latency_s: number | null; first_at: string | null; last_at: string | null;
};

export type ErrorRow = { provider: string; model: string; outcome: string; error_type: string | null; calls: number };

export type Providers = {
  window_s: number;
  models: { provider: string; model: string; calls: number; error_rate: number | null; latency_p95_s: number | null }[];
  breakers: { key: string; state: string; open_until: string | null; reason: string | null; updated_at: string | null }[];
  failovers: Decision[];
};

export type Budget = {
  budget_key: string; window: string; label: string; limit_usd: number | null; settled_usd: number;
  reserved_usd: number; left_usd: number | null; window_start: string | null; window_end: string | null;
  updated_at: string | null; forecast_usd: number | null; forecast_low_usd: number | null;
  forecast_high_usd: number | null; forecast_method: string | null; runs_out_at: string | null;
};

export type Forecast = {
  method: string; note: string; window_start: string; horizon_end: string; spent_usd: number; today_usd: number;
  projected_total_usd: number | null; projected_low_usd: number | null; projected_high_usd: number | null;
  daily_pace_usd: number | null; weekday_factors: Record<string, number> | null; history_days: number; interval: number;
  history: { date: string; spend_usd: number }[];
  days: { date: string; forecast_usd: number; low_usd: number; high_usd: number; spent_usd?: number }[];
};

export type Decision = {
  dag_id: string; run_id: string; task_id: string; map_index: number; decided_at: string | null; outcome: string;
  provider: string | null; model: string | null; failovers: number; reason: string; detail: Record<string, unknown>;
};

export type DagData = { dag_id: string; range: RangeInfo; runs: TopRun[]; tasks: TopRow[]; models: TopRow[] };

export type Call = {
  call_id: string; task_id: string; map_index: number; try_number: number; attempt: number; provider: string;
  model: string; started_at: string | null; duration_s: number; input_tokens: number; output_tokens: number;
  cache_read_tokens: number; cache_write_tokens: number; cost_usd: number | null; outcome: string;
  error_type: string | null; error_message: string | null; cost_basis: string; deferred: boolean;
};

export type RunData = {
  dag_id: string; run_id: string; calls: Call[];
  tasks: { task_id: string; map_index: number; calls: number; cost_usd: number; tokens: number; retries: number; failed: number }[];
  decisions: Decision[];
};

export type Message = { role: string; content: unknown };

export type Attempt = {
  call_id: string; try_number: number; attempt: number; provider: string; model: string; started_at: string | null;
  duration_s: number; input_tokens: number; output_tokens: number; cache_read_tokens: number; cost_usd: number | null;
  outcome: string; error_type: string | null; error_message: string | null;
  content: {
    request?: { model?: string; system?: string | null; messages?: Message[]; max_tokens?: number; temperature?: number | null; output_schema?: unknown };
    response?: { text?: string; output?: unknown; stop_reason?: string | null; request_id?: string | null };
    error?: string;
    rejected?: string;
  } | null;
};

export type TaskData = {
  dag_id: string; run_id: string; task_id: string; map_index: number; calls: Attempt[];
  artifacts: Record<string, unknown>;
};

export type Tile = {
  spend_today_usd: number; spend_yesterday_usd: number; calls_today: number; errors_today: number; open_anomalies: number;
};

export type Anomaly = {
  finding_id: string; kind: string; subject: string; occurred_at: string; detected_at: string | null;
  dag_id: string | null; run_id: string | null; task_id: string | null; map_index: number | null; call_id: string | null;
  provider: string | null; model: string | null; score: number; reason: string; group_key: string;
  status: "open" | "acknowledged"; status_by: string | null; status_at: string | null; alerted_at: string | null;
};

// supervisor_lib/analytics/experiments.py
export type Estimate = { estimate: number | null; low: number | null; high: number | null };

export type ExperimentArm = {
  arm: string; models: string[]; runs: number; passed: number; pass_rate: Estimate; cost_usd: Estimate;
  tokens: Estimate; duration_s: Estimate; iterations: Estimate; statuses: Record<string, number>;
};

export type ExperimentComparison = {
  arm: string; baseline: string; pass_rate_diff: Estimate; cost_usd_diff: Estimate; duration_s_diff: Estimate;
  pass_rate: "higher" | "lower" | "no_loss" | "unknown"; runs_needed_per_arm: number; more_runs_needed: number;
  verdict: string;
};

export type Experiment = {
  experiments: string[]; experiment: string | null; confidence: number; margin_points: number; runs: number;
  dags: string[]; first_at: string | null; last_at: string | null; arms: ExperimentArm[];
  comparisons: ExperimentComparison[]; verdict: string;
};
