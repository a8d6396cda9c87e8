"""A Supervisor plugin: the ``openai_compatible`` provider (any server that speaks OpenAI's Chat Completions API:
vLLM, Ollama, LM Studio, OpenRouter) and the ``changelog`` task type.

``plugin`` holds the declarations the entry points name (cheap to import: no Airflow, no SDK); ``hook``,
``operators`` and ``builders`` hold the parts Supervisor imports when a DAG is built or a call is made.
"""
