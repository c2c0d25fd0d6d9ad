# hadolint rules on parsed commands: DL3041, DL3042, DL3060, DL3047, DL4005, DL3025.
FROM fedora:41 AS rpm
RUN dnf install -y httpd-2.4.62 git

FROM python:3.13-slim AS py
RUN pip install --no-cache-dir flask==3.1.0
WORKDIR /app
RUN pip install requests==2.32.3
RUN --mount=type=cache,target=/root/.cache/pip pip install gunicorn==23.0.0

FROM python:3.13-slim AS py-env
ENV PIP_NO_CACHE_DIR=1
RUN python -m pip install uvicorn==0.32.0

FROM node:22.11.0-slim AS node
WORKDIR /app
RUN yarn install --frozen-lockfile
WORKDIR /src
RUN yarn install --frozen-lockfile && yarn cache clean

FROM debian:12
RUN wget https://example.com/x.tar.gz
WORKDIR /
RUN wget -q https://example.com/y.tar.gz && wget --progress=dot:giga https://example.com/z.tar.gz
WORKDIR /tmp
RUN ln -sf /bin/bash /bin/sh
HEALTHCHECK CMD curl -f http://localhost/
USER 1000
CMD ["bash"]
