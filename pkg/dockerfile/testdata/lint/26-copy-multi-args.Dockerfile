FROM alpine:3.22
WORKDIR /src
COPY go.mod go.sum .
COPY a b c/
USER 1000
CMD ["true"]
