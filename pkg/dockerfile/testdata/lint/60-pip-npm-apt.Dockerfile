# hadolint's DL3013 (pip), DL3016 (npm), DL3014 (apt-get -y), DL3027 (apt).
# k8sprep-ignore-file=DL3059,DL3042,DL3015,DL3008,DL3009
FROM python:3.13-slim AS py
RUN pip install flask
RUN pip install -r requirements.txt "requests>=2.32" ./local-pkg gunicorn==23.0.0 git+https://github.com/a/b
FROM node:22.11.0-slim AS js
RUN npm install -g typescript
RUN npm install && npm install -g @angular/cli@19.0.0 ./tools
FROM debian:12
RUN apt-get update && apt-get install curl=7.88.1-10+deb12u12
RUN apt-get -qq update && apt-get -qq install curl=7.88.1-10+deb12u12
RUN apt update && apt install -y curl=7.88.1-10+deb12u12
USER 1000
CMD ["bash"]
