"""Small operators the spec builder uses to express spec features in Airflow terms."""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from supervisor_lib.templating import when_truthy


def skip_unless(when: Any) -> None:
    """Skip the task (logging why) when its rendered ``when`` condition is false; ``None`` means no condition."""
    if when is not None and not when_truthy(when):
        raise AirflowSkipException(f"skipped: its `when` condition rendered {when!r}")


def parse_items(rendered: Any, task_id: str) -> list[Any]:
    """A rendered ``foreach`` as a list: JSON or a Python literal (how Jinja prints a list) is accepted."""
    value = rendered
    if isinstance(rendered, str):
        text = rendered.strip()
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise AirflowFailException(
                    f"task {task_id!r}: foreach rendered {text[:200]!r}, which is not a list; "
                    "make the expression return a list (e.g. ['a', 'b'])"
                ) from None
    if not isinstance(value, list | tuple):
        raise AirflowFailException(f"task {task_id!r}: foreach must render a list, got {type(value).__name__}")
    return list(value)


class ForeachItemsOperator(BaseOperator):
    """Render a spec task's ``foreach`` expression into the list its mapped task expands over.

    :param items: the templated expression (e.g. ``{{ ti.xcom_pull(task_ids='analyze')['modules'] }}``).
    :param when: the spec task's condition; when false the items (and so the mapped task) are skipped.
    """

    template_fields: Sequence[str] = ("items", "when")
    ui_color = "#f0f0f0"

    def __init__(self, *, items: str, when: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.items, self.when = items, when

    def execute(self, context: Any) -> list[Any]:
        skip_unless(self.when)
        items = parse_items(self.items, self.task_id)
        self.log.info("foreach: %d item(s)", len(items))
        if not items:
            raise AirflowSkipException("skipped: foreach rendered an empty list")
        return items
