# The production gateway (`ocppgw gateway`) for ECS Fargate.
#
#   docker build -t ocpp-gateway .                          # this machine's platform
#   docker build --platform linux/arm64 -t ocpp-gateway .   # for gatewayArchitecture ARM64
#
# infra/README.md shows how to push it to the stack's ECR repository.

ARG PYTHON=3.12

FROM python:${PYTHON}-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/ocppgw
WORKDIR /src
# Dependencies first: this layer stays cached while only the code changes.
COPY pyproject.toml README.md ./
RUN mkdir ocppj mqttio gateway processor lambdas ocppgw \
 && touch ocppj/__init__.py mqttio/__init__.py gateway/__init__.py processor/__init__.py \
    lambdas/__init__.py ocppgw/__init__.py \
 && /opt/ocppgw/bin/pip install . \
 && /opt/ocppgw/bin/pip uninstall -y ocppgw
COPY ocppj ocppj
COPY mqttio mqttio
COPY gateway gateway
COPY processor processor
COPY lambdas lambdas
COPY ocppgw ocppgw
RUN /opt/ocppgw/bin/pip install --no-deps . \
 && /opt/ocppgw/bin/python -m compileall -q /opt/ocppgw

FROM python:${PYTHON}-slim-bookworm
# The root filesystem is read-only on ECS: nothing to write bytecode to.
ENV PATH=/opt/ocppgw/bin:$PATH PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 ocppgw \
 && useradd --system --uid 10001 --gid ocppgw --no-create-home --shell /usr/sbin/nologin ocppgw
COPY --from=build /opt/ocppgw /opt/ocppgw
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
# SIGTERM drains and closes every charger with 1001; ECS's stopTimeout covers it.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ocppgw", "gateway"]
