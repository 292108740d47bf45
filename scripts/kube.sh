#!/usr/bin/env bash
# A real Kubernetes control plane for podiam's tests: etcd and kube-apiserver on loopback, the
# way controller-runtime's envtest runs them (no kubelet, scheduler or controller-manager), with
# kubectl and helm beside them. Pods can be created through the API (they stay Pending) and the
# apiserver issues real service-account tokens, signed with the keys `podiam issuer export` hands
# it; helm renders charts/podiam for the manifest tests.
#
#   scripts/kube.sh build            builds kube-apiserver, kubectl, etcd and helm from their Go
#                                     modules (versions pinned in scripts/kube/go.mod) into a cache
#                                     outside the repository; prints the bin directory
#   scripts/kube.sh bindir           prints the bin directory of the pinned versions (no build)
#   scripts/kube.sh start DIR [FLAG...]
#                                     starts etcd (data in DIR/etcd) and kube-apiserver (extra
#                                     kube-apiserver flags appended) on free loopback ports, waits
#                                     for /readyz and prints `export` lines to eval: KUBECONFIG (the
#                                     admin's), KUBE_APISERVER_URL, KUBE_CA_FILE, KUBE_BIN. Run
#                                     again on a running DIR, it restarts kube-apiserver with the
#                                     new flags and keeps etcd and its data
#   scripts/kube.sh stop DIR          stops both (by the pids recorded in DIR/state.json)
#
# The cache is ${PODIAM_KUBE_CACHE:-$HOME/.cache/podiam/kube}/<key>/bin, the key a hash of the
# pinned go.mod and go.sum, the linker flags, the Go version and the platform: a warm build is a
# cache hit in a fraction of a second, and a clean clone on the same machine reuses it. Builds run
# under `nice -n 19` with the machine's default module and build caches. `start` uses
# $PODIAM_KUBE_BIN instead when it is set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
mod="$here/kube"

die() { echo "kube.sh: $*" >&2; exit 1; }

cache_root() { echo "${PODIAM_KUBE_CACHE:-${HOME:-/root}/.cache/podiam/kube}"; }

# The binaries, by Go package; each is checked for after a build and before a cache hit counts.
binaries=(kube-apiserver kubectl etcd helm)
packages=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3
  helm.sh/helm/v4/cmd/helm)

have_all() { # DIR
  local b
  for b in "${binaries[@]}"; do [ -x "$1/$b" ] || return 1; done
}

# The version a module is required at in scripts/kube/go.mod.
pinned() { sed -n "s|^[[:space:]]*$1 \(v[0-9.]*\)\( // indirect\)\{0,1\}\$|\1|p" "$mod/go.mod" | head -1; }

# The linker flags: small binaries, and the Kubernetes and helm versions stamped the way their
# release builds do (`kubectl version` fails on the unstamped v0.0.0-master+$Format:%H$; helm
# would say only its minor version).
ldflags() {
  local v major minor x="" hv
  v=$(pinned k8s.io/kubernetes)
  [ -n "$v" ] || die "no k8s.io/kubernetes version in scripts/kube/go.mod"
  hv=$(pinned helm.sh/helm/v4)
  [ -n "$hv" ] || die "no helm.sh/helm/v4 version in scripts/kube/go.mod"
  x+=" -X helm.sh/helm/v4/internal/version.version=$hv -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
  major=${v#v}; major=${major%%.*}
  minor=${v#v"$major".}; minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  echo "-s -w$x"
}

bindir() {
  command -v go >/dev/null 2>&1 || die "go is not installed: cannot build kube-apiserver, kubectl, etcd and helm"
  local key
  key=$( { cat "$mod/go.mod" "$mod/go.sum"; ldflags; go version; go env GOOS GOARCH; } | sha256sum | cut -c1-16)
  echo "$(cache_root)/$key/bin"
}

build() {
  local bin tmp start
  bin=$(bindir)
  if have_all "$bin"; then
    echo "$bin"
    return 0
  fi
  mkdir -p "$(dirname "$bin")"
  # One build at a time per key (test processes in parallel wait for the first one).
  exec 9>"$(dirname "$bin")/.lock"
  flock 9
  if have_all "$bin"; then
    echo "$bin"
    return 0
  fi
  tmp=$(mktemp -d "$(dirname "$bin")/build.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  start=$(date +%s)
  echo "kube.sh: building ${binaries[*]} (pinned in scripts/kube/go.mod) into $bin" >&2
  if ! (cd "$mod" && CGO_ENABLED=0 GOFLAGS=-mod=readonly nice -n 19 \
      go build -trimpath -ldflags="$(ldflags)" -o "$tmp/" "${packages[@]}") >&2; then
    die "building ${binaries[*]} failed (see the go output above)"
  fi
  # `go build` names the etcd server module's binary after its path ("server").
  if [ -f "$tmp/server" ]; then mv "$tmp/server" "$tmp/etcd"; fi
  for b in "${binaries[@]}"; do
    [ -x "$tmp/$b" ] || die "the build produced no $b"
  done
  chmod 755 "$tmp"
  rm -rf "$bin"
  mv "$tmp" "$bin"
  trap - EXIT
  echo "kube.sh: built in $(( $(date +%s) - start ))s: $(du -sh "$bin" | cut -f1) in $bin" >&2
  echo "$bin"
}

case "${1:-}" in
  build) build ;;
  bindir) bindir ;;
  start | stop)
    cmd=$1
    shift
    [ $# -ge 1 ] || die "usage: scripts/kube.sh $cmd DIR [kube-apiserver flags...]"
    if [ "$cmd" = start ] && [ -z "${PODIAM_KUBE_BIN:-}" ]; then
      PODIAM_KUBE_BIN=$(build)
      export PODIAM_KUBE_BIN
    fi
    py=python3
    [ -x "$root/.venv/bin/python" ] && py="$root/.venv/bin/python"
    exec "$py" "$root/tests/e2e/kube_e2e.py" "$cmd" "$@"
    ;;
  *)
    die "usage: scripts/kube.sh build | bindir | start DIR [kube-apiserver flags...] | stop DIR"
    ;;
esac
