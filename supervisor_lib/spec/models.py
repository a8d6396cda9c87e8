"""The typed workflow spec: one ``WorkflowSpec`` per YAML file (one Airflow DAG), one ``TaskSpec`` per task.

Every model forbids unknown keys and is frozen. Numbers and booleans are strict (``"1.5"`` is not a budget). A task
keeps exactly what its author wrote; ``WorkflowSpec.effective(task)`` gives the same task with ``defaults`` and the
built-in defaults merged in, which is what a builder should read.
"""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from typing import Annotated, Any, ClassVar, cast

from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainValidator,
    PrivateAttr,
    Strict,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic._internal._model_construction import ModelMetaclass

from supervisor_lib.spec import graph, notifiers, plugins, validate
from supervisor_lib.spec.translate import reraise_with, spec_error_from
from supervisor_lib.spec.values import (
    DEFAULT_START_DATE,
    Capabilities,
    Count,
    DependsOn,
    Expression,
    Flag,
    Foreach,
    JsonSchema,
    NonEmpty,
    Param,
    Paths,
    Seconds,
    Shares,
    StartDate,
    TaskId,
    Template,
    Text,
    Usd,
)

# --- enums ----------------------------------------------------------------------------------------------------------


class TaskType(StrEnum):
    """What a task does. Read-only types only read the repo; write types change code in an isolated workspace."""

    PR_REVIEW = "pr_review"
    ISSUE_SUMMARY = "issue_summary"
    CODE_ANALYSIS = "code_analysis"
    SECURITY_AUDIT = "security_audit"
    DOCUMENTATION = "documentation"
    BUG_FIX = "bug_fix"
    FEATURE = "feature"
    REFACTOR = "refactor"
    TESTING = "testing"
    LLM = "llm"
    HUMAN_APPROVAL = "human_approval"

    @property
    def writes_code(self) -> bool:
        """True for the write types (a ``documentation`` task writes only when it sets ``write: true``)."""
        return self in WRITE_TYPES

    @property
    def calls_model(self) -> bool:
        """False only for ``human_approval``."""
        return self is not TaskType.HUMAN_APPROVAL


WRITE_TYPES = frozenset({TaskType.BUG_FIX, TaskType.FEATURE, TaskType.REFACTOR, TaskType.TESTING})
READ_ONLY_TYPES = frozenset(TaskType) - WRITE_TYPES - {TaskType.HUMAN_APPROVAL}


class Provider(StrEnum):
    """Which AI provider runs a task; ``auto`` lets the router choose."""

    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    AUTO = "auto"


class BudgetProvider(StrEnum):
    """A provider a daily budget can limit (``auto`` is a choice, not a provider)."""

    ANTHROPIC = "anthropic"
    OPENAI = "openai"


class KeepWorkspace(StrEnum):
    """When a write task's isolated workspace is kept after the task."""

    ON_FAILURE = "on_failure"
    ALWAYS = "always"
    NEVER = "never"


class TriggerRule(StrEnum):
    """Airflow's trigger rules (``airflow.task.trigger_rule.TriggerRule``)."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_DONE_MIN_ONE_SUCCESS = "all_done_min_one_success"
    ALL_DONE_SETUP_SUCCESS = "all_done_setup_success"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_SKIPPED = "none_skipped"
    ALWAYS = "always"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    ALL_SKIPPED = "all_skipped"


#: a task type: built in, or from a plugin (``supervisor.task_types`` entry points, :mod:`supervisor_lib.extensions`)
TaskTypeName = Annotated[
    TaskType | plugins.PluginTaskType,
    PlainValidator(lambda value: plugins.check_task_type(value, TaskType), json_schema_input_type=TaskType),
]
#: a provider: built in (``auto`` included), or from a plugin (``supervisor.providers`` entry points)
ProviderName = Annotated[
    Provider | str,
    PlainValidator(lambda value: plugins.check_provider(value, Provider), json_schema_input_type=Provider),
]

BUILTIN_DEFAULTS: dict[str, Any] = {"provider": Provider.AUTO, "retries": 2, "cache": True}
# Settings about the model call: they do not apply to human_approval tasks.
MODEL_CALL_SETTINGS = frozenset(
    {"provider", "model", "budget_usd", "max_tokens", "temperature", "system", "cache", "tier"}
)


class _SpecModelMeta(ModelMetaclass):
    """Makes ``TaskSpec(...)``/``WorkflowSpec(...)`` written in Python raise ``SpecError``, like a YAML file would.

    Only the constructor call goes through here: nested validation and ``model_validate`` (the loader's path, which
    adds line numbers) still raise pydantic's ``ValidationError``. An ``__init__`` override would not do: pydantic
    calls a custom ``__init__`` for nested models too.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as err:
            raise spec_error_from(err, cast("type[BaseModel]", cls), dag_id=kwargs.get("dag_id")) from None


class _Model(BaseModel, metaclass=_SpecModelMeta):
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, protected_namespaces=()
    )


class TaskSettings(_Model):
    """Settings a task may override and ``defaults`` may set for every task. ``None`` means "not set here"."""

    OVERRIDABLE: ClassVar[tuple[str, ...]] = (
        "provider", "model", "retries", "retry_delay_s", "budget_usd", "timeout_s", "max_tokens",
        "temperature", "pool", "deferrable", "cache", "system", "tier",
    )  # fmt: skip

    provider: ProviderName | None = Field(
        None, description="anthropic, openai, a plugin's provider, or auto (the router chooses). Default auto."
    )
    model: Text | None = Field(None, description="Model name, e.g. claude-sonnet-4-6; default: the provider's.")
    retries: Count | None = Field(None, description="Airflow retries of the task. Default 2.")
    retry_delay_s: Seconds | None = Field(None, description="Seconds between retries (Airflow's default when unset).")
    budget_usd: Usd | None = Field(None, description="Spend limit per task run, in US dollars.")
    timeout_s: Seconds | None = Field(
        None, description="Execution timeout in seconds; for human_approval, how long to wait for a decision."
    )
    max_tokens: Annotated[int, Strict(), Ge(1)] | None = Field(None, description="Output token limit per model call.")
    temperature: Annotated[float, Strict(), Ge(0), Le(2)] | None = Field(None, description="Sampling temperature.")
    pool: Text | None = Field(None, description="Airflow pool the task runs in.")
    deferrable: Flag | None = Field(None, description="Wait for the model in the triggerer; null: deployment default.")
    cache: Flag | None = Field(
        None, description="Re-use a response already paid for in this DAG run (retries, cleared tasks). Default true."
    )
    system: Template | None = Field(None, description="System prompt (templated).")
    tier: Text | None = Field(
        None,
        description="provider auto: the lowest quality tier the router may pick (economy, standard, premium; see "
        "include/catalog.yaml). Default: the model's tier, else the catalogue's default_tier.",
    )


class TaskDefaults(TaskSettings):
    """Per-task settings applied to every task that does not set them itself."""


class ValidateSpec(_Model):
    """A command that must pass in the workspace before a write task's change is accepted."""

    command: Text = Field(description="Shell command run in the workspace, e.g. 'pytest -q'.")
    timeout: Seconds = Field(300.0, description="Seconds before the command is stopped.")


class ReviewerSpec(_Model):
    """A second model that reviews a write task's change."""

    provider: ProviderName = Field(Provider.AUTO, description="Reviewer's provider.")
    model: Text | None = Field(None, description="Reviewer's model; default: the provider's.")


class NotifierSpec(_Model):
    """One Airflow notifier: what sends the message, and its arguments."""

    notifier: Annotated[str, AfterValidator(notifiers.check_notifier)] = Field(
        description="smtp, webhook, slack, slack_webhook, or the import path of any Airflow BaseNotifier subclass "
        "(e.g. airflow.providers.smtp.notifications.smtp.SmtpNotifier)."
    )
    kwargs: dict[str, Any] = Field(
        {},
        description="The notifier's arguments (e.g. to, smtp_conn_id); strings are Jinja templates rendered with "
        "Airflow's context. No secrets: name an Airflow connection instead.",
    )

    @model_validator(mode="after")
    def _check_arguments(self) -> NotifierSpec:
        validate.raise_findings(notifiers.argument_findings(self.notifier, self.kwargs))
        return self


Notifiers = tuple[NotifierSpec, ...]


class TaskNotify(_Model):
    """Who hears about a task: Airflow's ``on_failure_callback``/``on_success_callback`` with notifiers."""

    on_failure: Notifiers = Field((), description="When the task fails (after its last retry).")
    on_success: Notifiers = Field((), description="When the task succeeds.")


class BudgetNotify(_Model):
    """Hear about the DAG's budgets before they run out: once per budget window and share crossed."""

    share: Shares = Field(
        (0.8,), description="The share(s) of a limit whose crossing is announced, e.g. 0.8 or [0.5, 0.9]. Default 0.8."
    )
    notifiers: Annotated[Notifiers, NonEmpty] = Field(description="Who is told.")


class WorkflowNotify(TaskNotify):
    """Who hears about the workflow: its runs (Airflow's DAG callbacks), anomalies and budgets (the anomaly scan)."""

    on_failure: Notifiers = Field((), description="When a run fails (once per run; Airflow's DAG callback).")
    on_success: Notifiers = Field((), description="When a run succeeds (once per run).")
    on_anomaly: Notifiers = Field(
        (), description="When the anomaly scan finds something in this DAG's calls or spend (once per finding burst)."
    )
    on_budget: BudgetNotify | None = Field(
        None, description="When this DAG's spend crosses a share of a limit of its budget: block."
    )


class ArmSpec(_Model):
    """One arm of an experiment: what it changes in the task. Unset fields keep the task's own settings."""

    name: TaskId = Field(description="The arm's name, shown as the map index in Airflow: letters, digits, _ . -")
    provider: ProviderName | None = Field(
        None, description="anthropic, openai, auto or a plugin's provider; default: the task's."
    )
    model: Text | None = Field(
        None, description="The model; default: the task's when the provider is the task's, else the provider's."
    )
    system: Template | None = Field(None, description="System prompt variant (templated), replacing the task's.")
    temperature: Annotated[float, Strict(), Ge(0), Le(2)] | None = Field(None, description="Sampling temperature.")
    max_tokens: Annotated[int, Strict(), Ge(1)] | None = Field(None, description="Output token limit per call.")
    max_iterations: Annotated[int, Strict(), Ge(1), Le(10)] | None = Field(
        None, description="Write tasks: attempts to reach a passing change (1-10)."
    )

    def overrides(self) -> dict[str, Any]:
        """The task settings this arm sets (``provider``, ``model``, ``system``...), by name."""
        return self.model_dump(exclude={"name"}, exclude_none=True)


class ExperimentSpec(_Model):
    """Run a supervised coding task once per arm on the same inputs, and record each arm's outcome
    (``docs/experiments.md``). The first arm is the baseline the others are compared with."""

    name: TaskId = Field(description="The experiment's name: its results across runs and DAGs are kept under it.")
    arms: Annotated[tuple[ArmSpec, ...], NonEmpty] = Field(
        description="Two or more arms, the baseline first.", json_schema_extra={"minItems": 2}
    )

    @model_validator(mode="after")
    def _check_arms(self) -> ExperimentSpec:
        findings = [] if len(self.arms) >= 2 else [validate.Finding(("arms",), "needs two arms or more to compare")]
        seen: set[str] = set()
        for i, arm in enumerate(self.arms):
            if arm.name in seen:
                findings.append(validate.Finding(("arms", i, "name"), f"arm '{arm.name}' is named twice"))
            seen.add(arm.name)
            if problem := validate.model_mismatch(arm.provider, arm.model):
                findings.append(validate.Finding(("arms", i, "model"), problem))
        validate.raise_findings(findings)
        return self


class TaskSpec(TaskSettings):
    """One task of a workflow, as written. Read it through ``WorkflowSpec.effective`` to get defaults merged in."""

    id: TaskId = Field(description="Task id, unique in the workflow: letters, digits, _ . -")
    type: TaskTypeName = Field(description="What the task does: a built-in task type or a plugin's.")
    description: str | None = Field(None, description="Shown as the task's documentation.")
    instructions: Template | None = Field(None, description="What to do (templated; {{ item }} with foreach).")
    paths: Paths | None = Field(
        None, description="Glob patterns, relative to the repo, to work on (a string or a list)."
    )
    depends_on: DependsOn = Field((), description="Ids of the tasks that must run first (a string or a list).")
    when: Expression | None = Field(None, description="Jinja expression; the task is skipped when it renders false.")
    foreach: Foreach = Field(None, description="Jinja expression rendering a list, or a list: one mapped task each.")
    trigger_rule: TriggerRule | None = Field(None, description="Airflow trigger rule; default all_success.")
    prompt: Template | None = Field(None, description="llm: the prompt (templated).")
    output_schema: JsonSchema | None = Field(None, description="llm: JSON Schema the answer must match.")
    base_ref: Text | None = Field(None, description="pr_review: the base git ref.")
    head_ref: Text | None = Field(None, description="pr_review: the head git ref.")
    patch_file: Text | None = Field(None, description="pr_review: a patch file to review instead of refs.")
    issue: Template | None = Field(None, description="issue_summary: the issue text (templated).")
    issue_file: Text | None = Field(None, description="issue_summary: a file holding the issue text.")
    write: Flag | None = Field(None, description="documentation: true lets the task change files.")
    validation: ValidateSpec | None = Field(None, alias="validate", description="Write tasks: a check to pass.")
    max_iterations: Annotated[int, Strict(), Ge(1), Le(10)] | None = Field(
        None, description="Write tasks: attempts to reach a passing change (1-10). Default 3."
    )
    reviewer: ReviewerSpec | None = Field(None, description="Write tasks: optional second-model review.")
    capabilities: Capabilities | None = Field(
        None,
        description="provider auto: capabilities the model needs on top of the task type's (e.g. long_context, "
        "vision; see include/catalog.yaml).",
    )
    keep_workspace: KeepWorkspace | None = Field(
        None, description="Write tasks: keep the workspace. Default on_failure."
    )
    experiment: ExperimentSpec | None = Field(
        None,
        description="Supervised coding tasks: run once per arm (provider, model, prompt, parameters) and "
        "compare the arms (docs/experiments.md).",
    )
    subject: Template | None = Field(None, description="human_approval: the subject (templated).")
    body: Template | None = Field(None, description="human_approval: the body (templated).")
    options: Annotated[tuple[Text, ...], NonEmpty] | None = Field(
        None, description="human_approval: the choices. Default [Approve, Reject].", json_schema_extra={"minItems": 1}
    )
    notify: TaskNotify | None = Field(None, description="Notifiers told when this task fails or succeeds.")

    with_: dict[str, Any] | None = Field(
        None, alias=plugins.WITH, description="A plugin task type's own settings (its plugin's schema)."
    )

    @property
    def writes(self) -> bool:
        """True when the task changes code: a write type, or documentation with ``write: true``."""
        return self.type.writes_code or (self.type is TaskType.DOCUMENTATION and self.write is True)

    @model_validator(mode="after")
    def _check_fields_together(self) -> TaskSpec:
        validate.raise_findings([*validate.task_findings(self), *plugins.with_findings(self)])
        return self


class BudgetSpec(_Model):
    """Spend limits that hold across runs (``docs/routing.md``), checked before every routed call.

    Windows are UTC days and calendar months. Global limits (the Airflow Variable ``supervisor_budgets``) apply on
    top; where both set the same limit, the lower one holds.
    """

    per_run_usd: Usd | None = Field(None, description="Limit per DAG run (every task and try), in US dollars.")
    per_day_usd: Usd | None = Field(None, description="Limit per UTC day for this DAG, in US dollars.")
    per_month_usd: Usd | None = Field(None, description="Limit per calendar month (UTC) for this DAG.")
    per_provider_day_usd: dict[BudgetProvider, Usd] = Field(
        {}, description="Limit per UTC day per provider (anthropic, openai), for every DAG's calls to it."
    )
    team: Text | None = Field(None, description="The team this DAG's spend counts for.")
    per_team_month_usd: Usd | None = Field(None, description="Limit per calendar month for the team's spend.")

    @model_validator(mode="after")
    def _check_together(self) -> BudgetSpec:
        if self.per_team_month_usd is not None and self.team is None:
            validate.raise_findings(
                [validate.Finding(("per_team_month_usd",), "needs 'team': whose spend does it limit?")]
            )
        return self

    def declaration(self) -> dict[str, Any]:
        """The block as plain values (what ``supervisor_lib.routing.budgets.BudgetDeclaration`` reads)."""
        data = self.model_dump(exclude_none=True)
        data["per_provider_day_usd"] = {str(p): usd for p, usd in self.per_provider_day_usd.items()}
        return data


class WorkflowSpec(_Model):
    """One workflow: one Airflow DAG. Built by ``load_spec`` from YAML, or directly in Python.

    Equality compares the content only: ``source_path`` and ``spec_hash`` (provenance) are not compared.
    """

    dag_id: Annotated[str, AfterValidator(validate.check_dag_id)] = Field(
        description="DAG id; defaults to the file name without .yaml. Letters, digits, _ . - (at most 250)."
    )
    description: str | None = Field(None, description="The DAG's documentation.")
    schedule: Annotated[str, AfterValidator(validate.check_schedule)] | None = Field(
        None, description="Cron (5 fields), a preset (@daily, @hourly, ...), or null: manual and REST triggers only."
    )
    timezone: Annotated[str, AfterValidator(validate.check_timezone)] = Field("UTC", description="IANA time zone.")
    start_date: StartDate = Field(DEFAULT_START_DATE, description="First logical date; default 2026-01-01.")
    catchup: Flag = Field(False, description="Run the missed schedule intervals since start_date.")
    tags: tuple[Annotated[str, StringConstraints(min_length=1, max_length=100)], ...] = Field(
        (), description="DAG tags."
    )
    owner: Text = Field("supervisor", description="Owner shown in Airflow.")
    repo: Text | None = Field(None, description="The code the tasks work on: a local path or a git URL.")
    max_active_runs: Annotated[int, Strict(), Ge(1)] | None = Field(None, description="Concurrent DAG runs.")
    dagrun_timeout_s: Seconds | None = Field(None, description="Seconds before a DAG run times out.")
    defaults: TaskDefaults = Field(TaskDefaults(), description="Settings applied to every task unless it overrides.")
    budget: BudgetSpec | None = Field(
        None, description="Spend limits across runs: per run, per day, per month, per provider, per team."
    )
    params: dict[str, Param] = Field(
        {}, description="REST trigger conf: one JSON Schema per key (becomes an Airflow Param)."
    )
    notify: WorkflowNotify | None = Field(
        None, description="Notifiers told about runs that fail or succeed, anomalies and budget shares crossed."
    )
    experiment: ExperimentSpec | None = Field(
        None, description="An experiment every supervised coding task without its own runs (docs/experiments.md)."
    )
    tasks: Annotated[tuple[TaskSpec, ...], NonEmpty] = Field(
        description="The tasks, in any order (at least one).", json_schema_extra={"minItems": 1}
    )

    _source_path: str | None = PrivateAttr(None)
    _spec_hash: str | None = PrivateAttr(None)
    # task id -> (task as written, defaults, merged): entries are reused only while both are the very same objects,
    # so a model_copy(update=...) that shares this dict never sees a stale merge.
    _effective: dict[str, tuple[TaskSpec, TaskDefaults, TaskSpec]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _check_graph(cls, data: Any, handler: ModelWrapValidatorHandler[WorkflowSpec]) -> WorkflowSpec:
        try:
            spec = handler(data)
        except ValidationError as err:
            raw = data.get("tasks") if isinstance(data, dict) else None
            reraise_with(err, graph.graph_findings(graph.nodes_from_raw(raw)))
            raise
        nodes = spec._nodes()
        validate.raise_findings([*graph.graph_findings(nodes), *graph.read_findings(nodes, spec._reads()),
                                 *_param_findings(spec), *_model_findings(spec), *_route_findings(spec),
                                 *_notify_findings(spec)])  # fmt: skip
        return spec

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WorkflowSpec):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # holds dicts (params): not hashable

    @property
    def source_path(self) -> str | None:
        """The file this spec was loaded from (absolute), or ``None`` when built in Python."""
        return self._source_path

    @property
    def spec_hash(self) -> str | None:
        """sha256 (hex) of the file's bytes, or ``None`` when built in Python."""
        return self._spec_hash

    def task(self, task_id: str) -> TaskSpec:
        """The task with this id, as written; ``KeyError`` when there is none."""
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)

    def effective(self, task: TaskSpec | str) -> TaskSpec:
        """The task with ``defaults`` and built-in defaults merged in (cached).

        Per-task settings: the task's value, else ``defaults``', else the built-in default (provider auto, retries
        2, cache true); settings that do not apply stay ``None`` (a human_approval task has no provider), and a
        task that sets a provider other than ``defaults.provider`` does not inherit ``defaults.model``. Then:
        write tasks get ``max_iterations`` 3 and ``keep_workspace`` on_failure; human_approval gets options
        (Approve, Reject); an llm task's ``prompt`` is its ``instructions`` when it has no ``prompt``.
        """
        written = self.task(task if isinstance(task, str) else task.id)
        cached = self._effective.get(written.id)
        if cached is None or cached[0] is not written or cached[1] is not self.defaults:
            cached = (written, self.defaults, _merge(written, self.defaults))
            self._effective[written.id] = cached
        return cached[2]

    def experiment_of(self, task: TaskSpec) -> ExperimentSpec | None:
        """The experiment ``task`` runs: its own, else the workflow's for a supervised coding task."""
        if task.experiment is not None or task.type in (TaskType.LLM, TaskType.HUMAN_APPROVAL):
            return task.experiment
        return self.experiment

    @property
    def effective_tasks(self) -> tuple[TaskSpec, ...]:
        """Every task through ``effective``, in file order."""
        return tuple(self.effective(task) for task in self.tasks)

    def edges(self) -> list[tuple[str, str]]:
        """(upstream, downstream) pairs, in file order."""
        return [(dep, task.id) for task in self.tasks for dep in task.depends_on]

    def topological_order(self) -> list[str]:
        """Task ids, every task after its upstreams; ties keep file order."""
        return graph.topological_order(self._nodes())

    def start_datetime(self) -> datetime:
        """``start_date`` as an aware datetime in ``timezone`` (midnight when a date was given)."""
        from zoneinfo import ZoneInfo

        value = self.start_date
        if not isinstance(value, datetime):
            value = datetime.combine(value, time())
        return value if value.tzinfo else value.replace(tzinfo=ZoneInfo(self.timezone))

    def _nodes(self) -> list[graph.Node]:
        return [graph.Node(i, task.id, task.depends_on) for i, task in enumerate(self.tasks)]

    def _reads(self) -> dict[int, list[tuple[str, str]]]:
        """Per task position, the ``(field, task id)`` results its templates read with ``xcom_pull``."""
        reads: dict[int, list[tuple[str, str]]] = {}
        for position, task in enumerate(self.tasks):
            for field in validate.TEMPLATE_FIELDS:
                value = getattr(task, field, None)
                if isinstance(value, str) and "xcom_pull" in value:
                    reads.setdefault(position, []).extend((field, read) for read in graph.xcom_reads(value))
        return reads

    def _with_source(self, path: str, sha256: str) -> WorkflowSpec:
        self._source_path, self._spec_hash = path, sha256
        return self


def _merge(task: TaskSpec, defaults: TaskDefaults) -> TaskSpec:
    update: dict[str, Any] = {}
    # A task that picks another provider than defaults does not inherit the defaults' model (it would not fit).
    own_provider = task.provider is not None and task.provider != defaults.provider
    for name in TaskSettings.OVERRIDABLE:
        if getattr(task, name) is None and (task.type.calls_model or name not in MODEL_CALL_SETTINGS):
            value = None if name == "model" and own_provider else getattr(defaults, name)
            update[name] = value if value is not None else BUILTIN_DEFAULTS.get(name)
    if task.writes:
        update["max_iterations"] = task.max_iterations or 3
        update["keep_workspace"] = task.keep_workspace or KeepWorkspace.ON_FAILURE
    if task.type is TaskType.HUMAN_APPROVAL and task.options is None:
        update["options"] = ("Approve", "Reject")
    if task.type is TaskType.LLM and task.prompt is None:
        update["prompt"], update["instructions"] = task.instructions, None
    if task.type is TaskType.DOCUMENTATION and task.write is None:
        update["write"] = False
    return task.model_copy(update=update)


def arm_task(task: TaskSpec, arm: ArmSpec) -> TaskSpec:
    """``task`` (effective) with ``arm``'s settings: an arm that changes the provider and names no model uses that
    provider's default model, as a task that picks another provider than ``defaults`` does."""
    update = arm.overrides()
    if "provider" in update and "model" not in update and update["provider"] != task.provider:
        update["model"] = None
    elif "model" in update and "provider" not in update:
        from supervisor_lib.model_facts import provider_of

        owner = provider_of(update["model"])
        if owner is not None and str(task.provider) not in (owner, "auto"):
            update["provider"] = owner  # a model of the other provider: the arm switches provider with it
    return task.model_copy(update=update)


def _param_findings(spec: WorkflowSpec) -> list[validate.Finding]:
    """A scheduled run has no conf, so Airflow refuses a schedule while a param has no default (``DAG`` raises)."""
    if spec.schedule is None:
        return []
    return [
        validate.Finding(("params", name), "needs a default: the workflow has a schedule, and a scheduled run has no "
                         "conf to fill it in (or set schedule: null)")
        for name, schema in spec.params.items()
        if "default" not in schema
    ]  # fmt: skip


def _notify_findings(spec: WorkflowSpec) -> list[validate.Finding]:
    """``notify.on_budget`` without a ``budget:`` block has no limit to cross."""
    if spec.notify is None or spec.notify.on_budget is None or spec.budget is not None:
        return []
    return [validate.Finding(("notify", "on_budget"), "needs a budget: block with a limit (per_run_usd, per_day_usd, "
                             "...): without one there is no share of a limit to cross")]  # fmt: skip


def _model_findings(spec: WorkflowSpec) -> list[validate.Finding]:
    """Models that plainly belong to another provider than the one the task (or reviewer) uses."""
    findings = []
    defaults = spec.defaults
    if problem := validate.model_mismatch(defaults.provider, defaults.model):
        findings.append(validate.Finding(("defaults", "model"), problem))
    for i, task in enumerate(spec.tasks):
        if task.provider is not None or task.model is not None:
            merged = _merge(task, defaults)  # not spec.effective: ids may still be duplicated here
            if problem := validate.model_mismatch(merged.provider, merged.model):
                findings.append(validate.Finding(("tasks", i, "model" if task.model else "provider"), problem))
        if task.reviewer and (problem := validate.model_mismatch(task.reviewer.provider, task.reviewer.model)):
            findings.append(validate.Finding(("tasks", i, "reviewer", "model"), problem))
    if spec.experiment is not None and not any(spec.experiment_of(task) is spec.experiment for task in spec.tasks):
        why = "no task runs it: it applies to supervised coding tasks (not llm or human_approval) without their own"
        findings.append(validate.Finding(("experiment",), why))
    return findings


def _route_findings(spec: WorkflowSpec) -> list[validate.Finding]:
    """Routed tasks (provider auto) the catalogue cannot serve: detectable while parsing (``routing_check``)."""
    from supervisor_lib.spec.routing_check import route_findings

    return route_findings([(i, _merge(task, spec.defaults)) for i, task in enumerate(spec.tasks)])
