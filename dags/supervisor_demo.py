"""The demo ``make run`` triggers: ask each provider a question through the official SDKs.

Without API keys the connections point at the offline demo provider, so a newcomer sees a green run.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from supervisor_lib import AnthropicOperator, OpenAIOperator

with DAG(
    dag_id="supervisor_demo",
    description="Ask Anthropic and OpenAI one question each (offline demo provider without API keys)",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["supervisor", "demo"],
    default_args={"owner": "supervisor", "retries": 1},
    doc_md=__doc__,
):
    ask_claude = AnthropicOperator(
        task_id="ask_claude",
        model="claude-haiku-4-5",
        system="You are a concise senior engineer.",
        prompt="In one sentence: why should a coding agent's patch be tested in an isolated workspace?",
        max_tokens=200,
    )
    ask_gpt = OpenAIOperator(
        task_id="ask_gpt",
        model="gpt-4.1-mini",
        prompt="In one sentence, review this answer: {{ ti.xcom_pull(task_ids='ask_claude')['text'] }}",
        max_tokens=200,
    )
    ask_claude >> ask_gpt
