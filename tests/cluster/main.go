// gg-cluster runs a local Kubernetes control plane for gitops-guard's tests
// and demo: embedded etcd, kube-apiserver and kube-controller-manager, built
// from the Kubernetes Go modules, plus kubectl from the same release.
//
//	gg-cluster up --dir D [--port N]     start everything, supervise, stop on SIGTERM
//	gg-cluster etcd --dir D --port N     one component per process, so that
//	gg-cluster apiserver FLAGS...        global flag and metrics registries
//	gg-cluster controller-manager FLAGS  of the components never collide
//	gg-cluster up --node ...             the same, reachable from Pods on this host
//	gg-cluster node --dir D --cluster C --pause-image REF
//	                                     a node here: containerd, kubelet, kube-proxy,
//	                                     kube-scheduler (build-node.sh; NODE.md)
//	gg-cluster git-serve --root D        Git's smart HTTP server for Flux sources
//	kubectl ...                          (argv[0] == kubectl) kubectl itself
package main

import (
	"fmt"
	"os"
	"path/filepath"
	_ "time/tzdata" // CronJob time zones, as in the upstream mains

	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's client auth plugins
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	if filepath.Base(os.Args[0]) == "kubectl" {
		// As cmd/kubectl/kubectl.go: verbosity first, then the command.
		logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) // nolint:errcheck
		command := kubectlcmd.NewDefaultKubectlCommand()
		if err := cli.RunNoErrOutput(command); err != nil {
			kubectlutil.CheckErr(err)
		}
		return
	}
	if len(os.Args) < 2 {
		usage()
	}
	sub, args := os.Args[1], os.Args[2:]
	switch sub {
	case "up":
		os.Exit(up(args))
	case "node":
		os.Exit(node(args))
	case "git-serve":
		os.Exit(gitServe(args))
	case "etcd":
		os.Exit(runEtcd(args))
	case "apiserver":
		command := apiserver.NewAPIServerCommand()
		command.SetArgs(args)
		os.Exit(cli.Run(command))
	case "controller-manager":
		command := controllermanager.NewControllerManagerCommand()
		command.SetArgs(args)
		os.Exit(cli.Run(command))
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gg-cluster up --dir DIR [--port PORT] [--node] | node --dir DIR --cluster DIR --pause-image REF | git-serve --root DIR | etcd | apiserver | controller-manager")
	os.Exit(2)
}
