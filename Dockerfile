# Supervisor on the official Airflow image. The base tag must match the Airflow version in uv.lock
# (tests/test_dockerfile.py checks it). Build: docker build -t supervisor .
FROM apache/airflow:3.3.2-python3.11

ENV SUPERVISOR_SRC=/opt/supervisor

# bubblewrap, the validation sandbox's preferred backend (supervisor_lib/workspace/sandbox.py; util-linux unshare,
# the fallback, is in the base image already). The sandbox also needs user namespaces from the container runtime:
# docs/kubernetes.md. System packages install as root; everything after runs as the image's airflow user again.
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
USER airflow

# The locked dependencies first (a layer that changes only when the lock does), then our package.
COPY --chown=airflow:0 pyproject.toml uv.lock README.md ${SUPERVISOR_SRC}/
COPY --chown=airflow:0 supervisor_lib/ ${SUPERVISOR_SRC}/supervisor_lib/
RUN pip install --no-cache-dir uv==0.13.9 \
 && uv export --project "${SUPERVISOR_SRC}" --frozen --no-dev --no-emit-project --no-hashes --quiet \
      --output-file "${SUPERVISOR_SRC}/requirements.lock.txt" \
 && uv pip install --no-cache --requirement "${SUPERVISOR_SRC}/requirements.lock.txt" \
 && uv pip install --no-cache --no-deps "${SUPERVISOR_SRC}"

COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 airflow_settings.yaml /opt/airflow/airflow_settings.yaml
