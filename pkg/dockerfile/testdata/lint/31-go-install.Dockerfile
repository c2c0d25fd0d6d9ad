FROM golang:1.26.0
RUN go install golang.org/x/tools/cmd/stringer
RUN go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
USER 1000
CMD ["true"]
