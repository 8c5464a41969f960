// Command kube-apiserver is the upstream Kubernetes API server, built from k8s.io/kubernetes as a
// library so that payplane's tests get the real binary without downloading a release tarball.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones, as in the upstream main

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
