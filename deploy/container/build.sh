#!/usr/bin/env bash
# Builds the auditrelay container image from deploy/container/Containerfile.
#
#   deploy/container/build.sh [IMAGE]        IMAGE defaults to localhost/auditrelay:dev
#
# The static binary is built on the host by deploy/release (ARCH=arm64
# picks another architecture than the host's), so the build pulls no base
# image and runs nothing inside a container. BUILDER=buildah (or docker)
# builds with that tool instead of podman; CA_BUNDLE takes the CA
# certificates from another file than Debian's
# /etc/ssl/certs/ca-certificates.crt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
image=${1:-localhost/auditrelay:dev}
arch=${ARCH:-$(env -u GOOS -u GOARCH go env GOARCH)}
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
builder=${BUILDER:-podman}

if ! command -v "$builder" >/dev/null; then
	echo "build.sh: $builder is not on PATH (apt-get install podman buildah)" >&2
	exit 1
fi
if [ ! -s "$ca" ]; then
	echo "build.sh: no CA certificates at $ca (apt-get install ca-certificates, or set CA_BUNDLE)" >&2
	exit 1
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
(cd "$root" && env -u GOOS -u GOARCH go run ./deploy/release -targets "linux/$arch" -out "$ctx/dist")
mv "$ctx/dist/bin/linux_$arch/auditrelay" "$ctx/auditrelay"
rm -rf "$ctx/dist"
cp "$here/Containerfile" "$here/passwd" "$here/group" "$ctx/"
cp "$ca" "$ctx/ca-certificates.crt"
mkdir -m 0700 "$ctx/data"

# The labels carry what the binary reports: its module version and commit.
info=$(go version -m "$ctx/auditrelay")
version=$(awk '$1 == "mod" { print $3 }' <<<"$info")
revision=$(awk '$1 == "build" && $2 ~ /^vcs.revision=/ { sub(/^vcs.revision=/, "", $2); print $2 }' <<<"$info")
created=$(awk '$1 == "build" && $2 ~ /^vcs.time=/ { sub(/^vcs.time=/, "", $2); print $2 }' <<<"$info")
[ -n "$version" ] && [ "$version" != "(devel)" ] || version=devel
[ -n "$revision" ] || revision=unknown
[ -n "$created" ] || created=$(date -u +%Y-%m-%dT%H:%M:%SZ)

case "$builder" in
podman) build=(podman build --layers=false) ;;
*) build=("$builder" build) ;;
esac
"${build[@]}" --platform "linux/$arch" -f "$ctx/Containerfile" \
	--build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg CREATED="$created" \
	-t "$image" "$ctx"
