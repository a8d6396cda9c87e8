"""Airflow DAGs from every task spec in include/specs/ (see docs/specs.md); invalid specs show as import errors.

(Airflow's safe-mode parsing skips files that do not mention both "airflow" and "dag", hence this sentence.)
"""

from supervisor_lib import load_dags

load_dags(globals(), specs_dir="include/specs")
