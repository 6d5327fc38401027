# A container image of tether serve (docs/RUNNING.md, "Docker"). Not
# built by CI. Build: docker build -t tether . (or, for a Raspberry Pi:
# docker buildx build --platform linux/arm64,linux/arm/v7,linux/arm/v6 .)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS=linux TARGETARCH TARGETVARIANT VERSION=""
RUN GOARM=${TARGETVARIANT#v} CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false \
    -ldflags "-s -w -X github.com/tether-iot/tether/internal/buildinfo.version=${VERSION:-devel}" \
    -o /tether ./cmd/tether && mkdir -p /data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /tether /usr/local/bin/tether
# The store's directory, the user's (a new named volume takes it).
COPY --from=build --chown=65532:65532 /data /data
# Every flag is an environment variable (docs/RUNNING.md): the store in
# the volume; nodes, MQTT and the page on every address of the container.
# Beyond loopback the embedded broker needs users and the page
# credentials: mount them and name them, e.g.
#   -v ./mqtt.passwd:/etc/tether/mqtt.passwd:ro -e TETHER_MQTT_PASSWORD_FILE=/etc/tether/mqtt.passwd
ENV TETHER_DATA=/data \
    TETHER_ADDR=:8123 \
    TETHER_MQTT_LISTEN=:1883 \
    TETHER_WEB=:8080
VOLUME /data
EXPOSE 8123 1883 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/tether"]
CMD ["serve"]
