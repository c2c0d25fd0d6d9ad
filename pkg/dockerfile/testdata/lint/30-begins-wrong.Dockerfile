RUN echo nope
FROM alpine:3.22
