# The after: `monolith serve` (converter and detectors in one process) as the ECS task's container.
# Built by `cdk deploy` (ContainerImage.from_asset); `cdk synth` only stages this directory.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
# Only what the service imports (.dockerignore lists it); the runtime dependencies come from PyPI through
# pyproject.toml: av and numpy (wheels carry FFmpeg), boto3 and Powertools (the `lambda` extra).
COPY pyproject.toml ./
COPY lambdas ./lambdas
COPY monolith ./monolith
COPY settings ./settings
COPY text_tables ./text_tables
RUN pip install '.[lambda]' && useradd --system --uid 10001 monitor
USER monitor
# The same command the local launcher runs (settings.SERVE_COMMAND).
CMD ["python", "-m", "monolith", "serve"]
