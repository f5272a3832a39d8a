# kai-entrypoint on top of a Kai server image.
#
#   docker build -t localhost/kai-entrypoint .
#
# Build arguments (all optional; the defaults are public images):
#   GO_IMAGE  Go toolchain for the builder stage (default
#             docker.io/library/golang:1.26-bookworm; fully qualified for Podman).
#   KAI_IMAGE Kai server image the final stage is based on
#             (default quay.io/konveyor/kai-solution-server:latest).
#   KAI_CMD   Command line that starts the Kai server. Setting ENTRYPOINT resets the
#             CMD inherited from KAI_IMAGE, so this image starts the server through a
#             small generated script, /usr/local/bin/kai-server, that runs
#             `exec $KAI_CMD "$@"` under /bin/sh. The default matches the solution
#             server image. For the earlier quay.io/konveyor/kai image, whose own
#             ENTRYPOINT script starts the server (kai/server.py under gunicorn), use
#             --build-arg KAI_CMD=/usr/local/bin/entrypoint.sh
#   VERSION   Version string stamped into the binary (kai-entrypoint --version).
#
# The image works unchanged as an arbitrary UID with GID 0 and a read-only root file
# system with a writable /tmp (OpenShift's defaults): kai-entrypoint writes only
# KAI_CA_BUNDLE, which defaults to /tmp/kai-entrypoint/ca-bundle.pem.

ARG GO_IMAGE=docker.io/library/golang:1.26-bookworm
ARG KAI_IMAGE=quay.io/konveyor/kai-solution-server:latest

FROM ${GO_IMAGE} AS builder
WORKDIR /src
# Modules first, so editing the sources does not invalidate this layer: the ones the
# binary is built from (`go list -deps -f '{{with .Module}}{{.Path}}{{end}}' .`), not the
# test-only ones such as k8s.io/api. One missing here is still fetched by `go build`.
COPY go.mod go.sum ./
RUN go mod download github.com/hashicorp/errwrap github.com/hashicorp/go-multierror \
    github.com/kelseyhightower/envconfig golang.org/x/crypto golang.org/x/net golang.org/x/text \
    software.sslmate.com/src/go-pkcs12
COPY . .
ARG VERSION=dev
# Static binary; symbols are kept (no -s/-w) so govulncheck can read the binary.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=${VERSION}" -o /out/kai-entrypoint .
# The command that starts the Kai server, written into a script here so that the final
# stage needs no RUN and keeps the user set by KAI_IMAGE. \$ keeps MOUNT_PATH for run time.
ARG KAI_CMD="python3.12 -m kai_mcp_solution_server --transport streamable-http --host 0.0.0.0 --port 8000 --mount-path=\${MOUNT_PATH:-/}"
RUN test -n "$KAI_CMD" \
 && printf '#!/bin/sh\n# Starts the Kai server: the KAI_CMD build argument of the kai-entrypoint image.\nexec %s "$@"\n' "$KAI_CMD" > /out/kai-server \
 && chmod 0755 /out/kai-server /out/kai-entrypoint

FROM ${KAI_IMAGE}
# Extra CA certificates (PEM or DER) added to the system bundle; see certs/README.md.
COPY certs/ /etc/kai/certs/
COPY --from=builder /out/kai-entrypoint /out/kai-server /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/kai-entrypoint"]
CMD ["/usr/local/bin/kai-server"]
