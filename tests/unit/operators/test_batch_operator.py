"""Batch operator construction decisions (submitting and collecting run in tests/integration/test_batch_dag.py)."""

from __future__ import annotations

from supervisor_lib.operators.batch import AnthropicBatchOperator, OpenAIBatchOperator


def test_batch_operators_stay_out_of_the_providers_call_pools() -> None:
    # A deferred batch waits up to a day: in a provider pool (include_deferred) it would hold a slot meant for
    # concurrent calls all that time, while the provider's batch API has its own queue.
    assert AnthropicBatchOperator(task_id="a", prompts=["x"]).pool == "default_pool"
    assert OpenAIBatchOperator(task_id="o", prompts=["x"]).pool == "default_pool"
    assert OpenAIBatchOperator(task_id="p", prompts=["x"], pool="batches").pool == "batches"  # an explicit pool wins
