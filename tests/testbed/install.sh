#!/usr/bin/env bash
# Installs the test bed's programs into a cache keyed by version, building them from
# Maven Central and the Go module proxy. A second run finds everything cached and returns at once.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${DURABLETOPIC_CACHE:-$HOME/.cache/durabletopic}
kafka_version=${DURABLETOPIC_KAFKA_VERSION:-4.3.1}
k8s_version=${DURABLETOPIC_K8S_VERSION:-v1.37.2}
etcd_version=${DURABLETOPIC_ETCD_VERSION:-v3.6.16}
helm_version=${DURABLETOPIC_HELM_VERSION:-v3.22.0}
crictl_version=${DURABLETOPIC_CRICTL_VERSION:-v1.37.0}
prometheus_operator_version=${DURABLETOPIC_PROMETHEUS_OPERATOR_VERSION:-v0.95.2}
controller_gen_version=${DURABLETOPIC_CONTROLLER_GEN_VERSION:-v0.23.0}
what=${1:-all}

export GOPATH=${GOPATH:-$cache/go}
export GOMODCACHE=${GOMODCACHE:-$cache/go/pkg/mod}
export GOCACHE=${GOCACHE:-$cache/go-build}
export GOFLAGS=-mod=mod
export GOTOOLCHAIN=local

log() { printf '[testbed-install] %s\n' "$*" >&2; }

install_kafka() {
  local dest=$cache/kafka-$kafka_version
  if [ -f "$dest/.complete" ]; then return; fi
  log "fetching Apache Kafka $kafka_version jars from Maven Central"
  rm -rf "$dest" && mkdir -p "$dest"
  sed "s|<kafka.version>[^<]*</kafka.version>|<kafka.version>$kafka_version</kafka.version>|" \
    "$here/kafka-pom.xml" > "$dest/pom.xml"
  (cd "$dest" && mvn -q -B -Dmaven.repo.local="$cache/m2" dependency:copy-dependencies \
     -DoutputDirectory=libs -DincludeScope=runtime)
  touch "$dest/.complete"
}

install_kubernetes() {
  local dest=$cache/kubernetes-$k8s_version
  if [ -f "$dest/.complete" ]; then return; fi
  log "building kube-apiserver, kube-controller-manager and kubectl $k8s_version (first build takes several minutes)"
  local src=$cache/build/kubernetes-$k8s_version
  rm -rf "$src" && mkdir -p "$src" "$dest/bin"
  (
    cd "$src"
    go mod init testbed.local/kubernetes >/dev/null 2>&1
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@$k8s_version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    local staging=${k8s_version/v1./v0.}
    grep -Eo '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" | awk '{print $1}' | sort -u |
      while read -r mod; do go mod edit -replace "$mod=$mod@$staging"; done
    go mod edit -require "k8s.io/kubernetes@$k8s_version"
    go build -o "$dest/bin/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl \
      k8s.io/kubernetes/cmd/kube-controller-manager
  )
  touch "$dest/.complete"
}

# kubelet and kube-scheduler for the test bed's node (tests/testbed/node.py), from the same
# k8s.io/kubernetes version as the API server, in a scratch module of their own. The kubelet needs
# k8s.io/cri-streaming (a staging module) and the exact cadvisor/lib and otelrestful versions of the
# release's go.mod, which a newer dependency would otherwise raise.
install_node_binaries() {
  local dest=$cache/kubernetes-node-$k8s_version
  if [ -f "$dest/.complete" ]; then return; fi
  log "building kubelet and kube-scheduler $k8s_version (first build takes 15-25 minutes on 2 cores)"
  local src=$cache/build/kubernetes-node-$k8s_version
  rm -rf "$src" && mkdir -p "$src" "$dest/bin"
  (
    cd "$src"
    go mod init testbed.local/kubernetes-node >/dev/null 2>&1
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@$k8s_version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    local staging=${k8s_version/v1./v0.}
    grep -Eo '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" | awk '{print $1}' | sort -u |
      while read -r mod; do go mod edit -replace "$mod=$mod@$staging"; done
    go mod edit -require "k8s.io/kubernetes@$k8s_version"
    local pinned
    for pinned in github.com/google/cadvisor/lib \
      go.opentelemetry.io/contrib/instrumentation/github.com/emicklei/go-restful/otelrestful; do
      go mod edit -require "$pinned@$(awk -v m="$pinned" '$1 == m {print $2; exit}' "$gomod")"
    done
    local version=k8s.io/component-base/version minor=${k8s_version#v1.}
    go build -ldflags "-X $version.gitVersion=$k8s_version -X $version.gitMajor=1 -X $version.gitMinor=${minor%%.*}" \
      -o "$dest/bin/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler
  )
  touch "$dest/.complete"
}

# The node's sandbox ("pause") image, as an OCI archive for `ctr images import`: kubernetes' own
# build/pause/linux/pause.c, compiled static, as the only file of the image.
install_pause_image() {
  local dest=$cache/pause-$k8s_version
  if [ -f "$dest/.complete" ]; then return; fi
  log "building the pause image $k8s_version"
  local src
  src=$(go mod download -json "k8s.io/kubernetes@$k8s_version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  rm -rf "$dest" && mkdir -p "$dest/rootfs"
  gcc -Os -static -o "$dest/rootfs/pause" "$src/build/pause/linux/pause.c"
  strip "$dest/rootfs/pause"
  python3 "$here/oci.py" "$dest/pause.oci.tar" "localhost/durabletopic/pause:$k8s_version" "$dest/rootfs" \
    --entrypoint /pause
  touch "$dest/.complete"
}

# What the node (tests/testbed/node.py) runs: containerd, runc and the CNI plugins from Debian, and the
# kubelet, kube-scheduler, crictl and pause image built here.
install_node() {
  local missing=() pkg
  for pkg in containerd runc containernetworking-plugins; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" -ne 0 ]; then
    log "not installing ${missing[*]} (root only); the node cannot run without them"
  elif [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
  install_node_binaries
  go_install crictl sigs.k8s.io/cri-tools/cmd/crictl "$crictl_version"
  install_pause_image
}

install_etcd() {
  local dest=$cache/etcd-$etcd_version
  if [ -f "$dest/.complete" ]; then return; fi
  log "building etcd $etcd_version"
  local src=$cache/build/etcd-$etcd_version
  rm -rf "$src" && mkdir -p "$src" "$dest/bin"
  (
    cd "$src"
    go mod init testbed.local/etcd >/dev/null 2>&1
    cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    go get "go.etcd.io/etcd/server/v3@$etcd_version" >/dev/null 2>&1
    go mod tidy
    go build -o "$dest/bin/etcd" .
  )
  touch "$dest/.complete"
}

# go_install NAME PACKAGE VERSION: `go install` of one command into $cache/NAME-VERSION/bin.
go_install() {
  local dest=$cache/$1-$3
  if [ -f "$dest/.complete" ]; then return; fi
  log "building $1 $3"
  mkdir -p "$dest/bin"
  GOBIN=$dest/bin GOFLAGS= go install "$2@$3"
  touch "$dest/.complete"
}

install_helm() { go_install helm helm.sh/helm/v3/cmd/helm "$helm_version"; }

install_controller_gen() {
  go_install controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen "$controller_gen_version"
}

# The Prometheus Operator's CRDs (monitoring.coreos.com/v1: ServiceMonitor, PrometheusRule and the
# others of that API version), for the tests of the chart's monitoring objects. The Go module proxy
# serves the operator's API module but not the repository that ships the YAML, so controller-gen
# generates them from the module's Go types and their markers, as the operator's own build does.
install_prometheus_operator_crds() {
  local dest=$cache/prometheus-operator-crds-$prometheus_operator_version
  if [ -f "$dest/.complete" ]; then return; fi
  install_controller_gen
  log "generating the Prometheus Operator $prometheus_operator_version CRDs with controller-gen $controller_gen_version"
  local api=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring
  local src=$cache/build/prometheus-operator-crds-$prometheus_operator_version
  rm -rf "$src" "$dest" && mkdir -p "$src" "$dest"
  (
    cd "$src"
    go mod init testbed.local/prometheus-operator-crds >/dev/null 2>&1
    printf 'package crds\n\nimport _ "%s/v1"\n' "$api" > crds.go
    go get "$api@$prometheus_operator_version"
    go mod tidy
    "$cache/controller-gen-$controller_gen_version/bin/controller-gen" crd paths="$api/v1" output:crd:dir="$dest"
  )
  touch "$dest/.complete"
}

case $what in
  all) install_kafka; install_etcd; install_kubernetes; install_node; install_helm; install_prometheus_operator_crds ;;
  kafka) install_kafka ;;
  etcd) install_etcd ;;
  kubernetes) install_kubernetes ;;
  node) install_node ;;
  node-binaries) install_node_binaries ;;
  helm) install_helm ;;
  prometheus-operator-crds) install_prometheus_operator_crds ;;
  *) echo "usage: $0 [all|kafka|etcd|kubernetes|node|node-binaries|helm|prometheus-operator-crds]" >&2; exit 2 ;;
esac
