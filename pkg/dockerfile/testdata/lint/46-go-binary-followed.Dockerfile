# The Go/scratch rules follow the binary that is copied, not any go build.
FROM golang:1.26.0 AS build
WORKDIR /src
COPY . .
# A helper built with cgo stays in the builder ...
RUN go build -o /out/gen ./cmd/gen && /out/gen
# ... the program copied out is static.
RUN CGO_ENABLED=0 go build -o /out/app ./cmd/app

# The alpine golang image has no C compiler: cgo is off by itself.
FROM golang:1.26.0-alpine AS alpine
WORKDIR /src
COPY . .
RUN go build -o /bin/tool ./cmd/tool

# With gcc installed, cgo is on: a dynamic binary.
FROM golang:1.26.0-alpine AS cgo
RUN apk add --no-cache gcc musl-dev
WORKDIR /src
COPY . .
RUN go build -o /bin/sqlite-tool ./cmd/sqlite-tool

FROM scratch AS tools
COPY --from=alpine /bin/tool /tool
COPY --from=cgo /bin/sqlite-tool /sqlite-tool

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
# A passwd file copied in resolves a user name.
COPY --from=build /etc/passwd /etc/passwd
COPY --from=build /out/app /app
USER nobody
ENTRYPOINT ["/app"]
