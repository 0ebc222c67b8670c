FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir -e ".[postgres]" \
    && useradd --create-home --uid 1000 app \
    && mkdir -p /srv/static && chown app /srv/static
# Not root: daphne needs no privilege to listen on 8000.
USER app
EXPOSE 8000
