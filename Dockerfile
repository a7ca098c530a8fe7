# One image with every Breakwater binary: controlplane (the default), agent
# and demo-upstream.
FROM golang:1.26-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/...

FROM alpine:3.22
RUN adduser -D -H -u 10001 breakwater
COPY --from=build /out/ /usr/local/bin/
USER breakwater
EXPOSE 8080 8090 9000
ENTRYPOINT ["controlplane"]
