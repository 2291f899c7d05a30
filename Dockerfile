# The project image: every pipeline step, RayJob and RayService runs it. The Ray version matches
# pyproject's pin (one Ray version everywhere).
ARG RAY_VERSION=2.60.0
FROM rayproject/ray:${RAY_VERSION}-py311-cpu
WORKDIR /home/ray/rsc
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users platform ./platform
COPY --chown=ray:users pipelines ./pipelines
COPY --chown=ray:users rllib_configs ./rllib_configs
COPY --chown=ray:users configs ./configs
RUN pip install --no-cache-dir torch==2.13.0 && pip install --no-cache-dir .
USER ray
ENTRYPOINT ["rsc"]
