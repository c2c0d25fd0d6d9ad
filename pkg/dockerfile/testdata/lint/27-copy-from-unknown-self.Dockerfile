FROM golang:1.26.0 AS build
COPY --from=build /a /a
COPY --from=builder /b /b
COPY --from=nginx:1.27 /etc/nginx /etc/nginx
COPY --from=0 /c /c
USER 1000
CMD ["true"]
