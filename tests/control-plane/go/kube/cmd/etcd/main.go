// Command etcd is the upstream etcd server (go.etcd.io/etcd/server/v3), the API server's storage.
// It lives in this module, at the release k8s.io/kubernetes itself requires, so that the two
// share one copy of grpc, protobuf and the etcd client packages (one build, no version skew).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
