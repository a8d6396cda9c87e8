"""``OpenAICompatibleOperator``: one supervised model call to an OpenAI-compatible server."""

from __future__ import annotations

from supervisor_lib.operators.llm import BaseLLMOperator
from supervisor_openai_compatible.hook import OpenAICompatibleHook


class OpenAICompatibleOperator(BaseLLMOperator):
    """One call to a model on an OpenAI-compatible server (connection type ``openai_compatible``, default
    ``openai_compatible_default``); the arguments and the result are :class:`BaseLLMOperator`'s."""

    hook_class = OpenAICompatibleHook
