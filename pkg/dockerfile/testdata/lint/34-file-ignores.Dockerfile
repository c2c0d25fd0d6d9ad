# k8sprep-ignore-file=RootFinalStage,DL3059
# hadolint global ignore=DL3007
FROM alpine:latest
RUN echo a
RUN echo b
CMD ["true"]
