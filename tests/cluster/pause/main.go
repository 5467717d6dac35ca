// pause is the sandbox container of the local node (tests/cluster/node.go):
// PID 1 of every Pod's shared namespaces. It waits for SIGTERM or SIGINT and
// reaps the orphans re-parented to it, as the upstream pause (a C program in
// kubernetes/build/pause) does. Built static with CGO_ENABLED=0, its image
// is this one file.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
