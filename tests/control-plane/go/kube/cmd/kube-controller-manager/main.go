// Command kube-controller-manager is the upstream controller manager (ReplicaSet, Job, garbage
// collector, namespace, service-account token controllers...), built from k8s.io/kubernetes.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones, as in the upstream main

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
