# The after: `monolith serve` (converter and detectors in one process) as the ECS task's container.
# Built by `cdk deploy` (ContainerImage.from_asset); `cdk synth` only stages this directory.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
# Only what the service imports (.dockerignore lists it). The project goes in without its dependencies;
# then pyproject.toml's runtime ones (av and numpy, whose wheels carry FFmpeg; boto3 and Powertools, the
# `lambda` extra) come from PyPI at the versions of requirements.lock, the dev venv's and the Lambdas',
# every wheel checked against the lock's hashes.
COPY pyproject.toml requirements.lock ./
COPY lambdas ./lambdas
COPY monolith ./monolith
COPY settings ./settings
COPY text_tables ./text_tables
# pip itself first, at the lock's version: older ones (the base image's may be) ignore a constraint's hashes.
RUN pip install "$(grep -o '^pip==[^ ]*' requirements.lock)" \
    && pip install --no-deps . \
    && pip install --require-hashes --constraint requirements.lock 'prime-video-monitor-before[lambda]' \
    && useradd --system --uid 10001 monitor
USER monitor
# The same command the local launcher runs (settings.SERVE_COMMAND).
CMD ["python", "-m", "monolith", "serve"]
