#!/bin/sh
# Build the native guest agent (paddock-agent): one static, stripped Go binary.
#
#     guest_image/agent/build.sh SRC_DIR PROTO_DIR OUT
#
# Runs inside the guest suite's build root (guest_image/native.py makes it), with that suite's own
# Debian packages only: golang-go, golang-google-grpc-dev, golang-google-protobuf-dev,
# golang-golang-x-sys-dev, protobuf-compiler, protoc-gen-go and protoc-gen-go-grpc. Offline: GOPATH
# mode over /usr/share/gocode, no module proxy. The Go code for the protocol is generated here from
# protos/paddock/guest/v1/agent.proto, by the same suite's plugins as the grpc library it builds
# against. Vets and runs the agent's Go tests first: a failing test fails the image build.
set -eu
src=$1 protos=$2 out=$3
gopath=$(mktemp -d)
trap 'rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src/paddock/agent"
cp "$src"/*.go "$gopath/src/paddock/agent/"
m=Mpaddock/guest/v1/agent.proto=paddock/agentpb
protoc -I "$protos" --go_out="$gopath/src" --go_opt="$m" --go-grpc_out="$gopath/src" --go-grpc_opt="$m" \
  paddock/guest/v1/agent.proto
export GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOPROXY=off GOFLAGS= CGO_ENABLED=0 \
  GOCACHE="$gopath/cache" HOME="$gopath" GOTOOLCHAIN=local
cd "$gopath/src/paddock/agent"
go vet .
go test -count=1 .
go build -trimpath -ldflags='-s -w' -o "$out" .
