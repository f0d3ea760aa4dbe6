# The light Python image (no Java, no KCL): the log generator and the local Slack receiver, stdlib plus the pinned
# packages they import (boto3 for --output kinesis, msgpack for --output forward; python-dotenv for the
# receiver's settings, read through consumer/config.py, the project's one configuration reader, which imports
# PyYAML and jsonschema for routes.yaml). tests/test_slack_receiver.py checks this list against the imports.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Versions come from requirements.txt, the one list of runtime pins.
COPY requirements.txt /tmp/requirements.txt
RUN grep -E '^(boto3|msgpack|python-dotenv|PyYAML|jsonschema|tenacity)==' /tmp/requirements.txt > /tmp/generator-requirements.txt \
    && pip install --no-cache-dir -r /tmp/generator-requirements.txt \
    && rm /tmp/requirements.txt /tmp/generator-requirements.txt

COPY generator ./generator
COPY slack_receiver ./slack_receiver
COPY consumer ./consumer

# /data: the Slack receiver's message store (a named volume takes this directory's owner).
RUN groupadd --gid 10001 cali \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin cali \
    && mkdir /data \
    && chown cali:cali /data
USER 10001:10001

# JSON lines on stdout: in compose, Docker's fluentd logging driver takes them to Fluent Bit.
CMD ["python", "-m", "generator", "--output", "stdout"]
