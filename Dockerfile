# One image for the worker, the API and the YouSign emulator; the command chooses the role:
#   python worker.py  |  python -m starter.api  |  python -m yousign_emulator
# (and the operator CLI: python -m starter.cli). See docker-compose.yml and docs/running.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, read from pyproject.toml, at the versions the tests passed with
# (deploy/constraints.txt): a code change does not reinstall them, a rebuild gets the same ones.
COPY pyproject.toml deploy/constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt -c constraints.txt \
    && rm /tmp/requirements.txt constraints.txt

COPY . .
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /app/data \
    && chown app:app /app/data

USER app
EXPOSE 8000 8090 9464
CMD ["python", "-m", "starter.api"]
