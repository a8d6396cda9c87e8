"""Analytics over the store (:mod:`supervisor_lib.store`): the questions the Supervisor views ask (``queries``,
``operations``) under a user's filters (``filters``). Reads only; the rollups it reads are kept by the store as
calls are recorded. The plugin (:mod:`supervisor_lib.plugin`) serves these through Airflow's API server."""
