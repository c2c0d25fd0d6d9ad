FROM debian:12
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y curl
# k8sprep-ignore=JSONArgsRecommended
CMD bash
USER 1000
