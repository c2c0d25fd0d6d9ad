# ExposeMismatch reads the package that is built (and what it imports).
FROM golang:1.26.0 AS build
WORKDIR /src
COPY go.mod ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/server ./cmd/server
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/server /server
EXPOSE 9000
ENTRYPOINT ["/server"]
