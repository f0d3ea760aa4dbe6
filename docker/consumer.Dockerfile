# The consumer: the KCL MultiLangDaemon (Java 17) + the Python RecordProcessor (one child per shard).
# Several containers of this image with the same CALI_APP_NAME share the shards (`docker compose up --scale
# consumer=2`): each one's workerId is cali-<container hostname> (CALI_WORKER_ID empty).

# --- 1. the KCL jars: jars/pom.xml is the one manifest (the same versions amazon-kclpy's own pom lists) --------
FROM maven:3.9.9-eclipse-temurin-17 AS jars
WORKDIR /build/jars
COPY jars/pom.xml ./
# The jars land next to pom.xml (its outputDirectory); the Maven repository /m2 feeds amazon-kclpy's install below.
RUN mvn -B -q -Dmaven.repo.local=/m2 dependency:copy-dependencies
# CALI's launcher of the daemon (kcl-launcher/: the MultiLangDaemon plus one property), compiled against those jars
# with this stage's JDK into /build/jars, so the runtime stage's COPY of the jars takes it along.
COPY kcl-launcher /build/kcl-launcher
RUN /build/kcl-launcher/build.sh /build/jars

# --- 2. the Java runtime, taken from Temurin's image (pinned by tag) rather than an unpinned Debian package -----
FROM eclipse-temurin:17.0.15_6-jre AS jre

# --- 3. the Python packages, in a venv that the runtime stage copies whole -------------------------------------
FROM python:3.11.11-slim-bookworm AS python-deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=jars /m2 /m2
COPY requirements.txt /tmp/requirements.txt
# amazon-kclpy's setup.py downloads the jars of its pom.xml at build time; point it at the Maven repository that
# stage 1 filled, as scripts/setup.sh does for local mode (same versions: jars/pom.xml is its dependency list).
RUN python -m venv /opt/venv \
    && KCL_MVN_REPO_SEARCH_URL=file:///m2/ /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

# --- 4. runtime --------------------------------------------------------------------------------------------------
FROM python:3.11.11-slim-bookworm

ENV JAVA_HOME=/opt/java/openjdk \
    PATH=/opt/venv/bin:/opt/java/openjdk/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

COPY --from=jre /opt/java/openjdk /opt/java/openjdk
COPY --from=python-deps /opt/venv /opt/venv

WORKDIR /app
# The layout local mode uses (consumer/config.py finds the repo root from its own path): jars/, properties/ and
# the packages side by side. The project is not pip-installed: PYTHONPATH=/app, so paths resolve under /app.
COPY --from=jars /build/jars/*.jar ./jars/
COPY properties ./properties
COPY consumer ./consumer
COPY localmode ./localmode
COPY generator ./generator
COPY slack_receiver ./slack_receiver

# .run/: where the launcher renders the properties file; writable by the unprivileged user only.
RUN groupadd --gid 10001 cali \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin cali \
    && mkdir /app/.run \
    && chown cali:cali /app/.run \
    && java -version
USER 10001:10001

# Render properties/cali.properties for this container's environment, then exec java (the daemon is the main
# process: `docker stop` sends it SIGTERM, it asks each processor to shut down, they checkpoint).
CMD ["python", "-m", "localmode", "daemon"]
