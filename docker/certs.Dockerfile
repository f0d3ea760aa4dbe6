# One-shot image of the `certs` service: makes LocalStack's throw-away CA + server certificate (docker/certs.py)
# in the `certs` volume at first start. trustme is installed at build time, so `up` needs no PyPI at run time.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The trustme pin comes from requirements.txt (local mode makes its emulator's certificate with the same package).
COPY requirements.txt /tmp/requirements.txt
RUN grep -E '^trustme==' /tmp/requirements.txt > /tmp/certs-requirements.txt \
    && pip install --no-cache-dir -r /tmp/certs-requirements.txt \
    && rm /tmp/requirements.txt /tmp/certs-requirements.txt

COPY docker/certs.py /usr/local/lib/cali/certs.py

# /certs exists in the image owned by the unprivileged user (uid 10001): a new named volume mounted there takes
# that owner.
RUN groupadd --gid 10001 cali \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin cali \
    && mkdir /certs \
    && chown cali:cali /certs
USER 10001:10001

ENTRYPOINT ["python", "/usr/local/lib/cali/certs.py"]
CMD ["/certs"]
