# A scratch stage can run what was copied into it.
FROM busybox:1.36-musl AS busybox
FROM golang:1.26.0 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -o /out/app .
FROM scratch AS check
COPY --from=build /out/app /app
RUN ["/app", "--self-test"]
RUN ["/bin/true"]
FROM scratch
COPY --from=busybox /bin/ /bin/
COPY --from=build /out/app /app
RUN /app --self-test
USER 65532
HEALTHCHECK CMD /app --health || exit 1
CMD /app
