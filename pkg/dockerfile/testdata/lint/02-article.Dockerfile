FROM golang:latest AS builder
ENV DB_CONNECTION_STRING="root:12345678@tcp(mymysql:3306)/PersonalizedRecommendationSystem"
WORKDIR /app
COPY . .
RUN go mod download
RUN go build -o main .
FROM scratch
COPY --from=builder /app/main /main
EXPOSE 8080
CMD /main
