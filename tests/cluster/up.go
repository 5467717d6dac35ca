package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// child is one supervised component process.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

func up(args []string) int {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	dir := fs.String("dir", "", "run directory (pki, logs, kubeconfigs)")
	port := fs.Int("port", 0, "kube-apiserver port (default: a free one)")
	_ = fs.Parse(args)
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "up: --dir is required")
		return 2
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fail("up: %v", err)
	}
	p := &plane{dir: abs, pki: filepath.Join(abs, "pki"), logs: filepath.Join(abs, "logs")}
	if err := p.prepare(*port); err != nil {
		return fail("up: %v", err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	code := p.run(stop)
	p.shutdown()
	_ = os.Remove(filepath.Join(abs, "ready"))
	return code
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	return 1
}

type plane struct {
	dir, pki, logs    string
	apiPort, etcdPort int
	etcdPeer, kcmPort int
	server            string
	children          []*child
}

func (p *plane) prepare(port int) error {
	for _, d := range []string{p.pki, p.logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	var err error
	if port != 0 {
		if !portFree(port) {
			return fmt.Errorf("port 127.0.0.1:%d is in use; pass another --port or run make down", port)
		}
		p.apiPort = port
	} else if p.apiPort, err = freePort(); err != nil {
		return err
	}
	for _, target := range []*int{&p.etcdPort, &p.etcdPeer, &p.kcmPort} {
		if *target, err = freePort(); err != nil {
			return err
		}
	}
	p.server = fmt.Sprintf("https://127.0.0.1:%d", p.apiPort)
	return p.writePKI()
}

func (p *plane) writePKI() error {
	ca, err := newAuthority(p.pki)
	if err != nil {
		return err
	}
	if err := ca.issue(p.pki, "apiserver", "kube-apiserver", nil, true); err != nil {
		return err
	}
	if err := serviceAccountKeys(p.pki); err != nil {
		return err
	}
	clients := []struct{ name, cn, org string }{
		{"admin", "admin", "system:masters"},
		{"controller-manager", "system:kube-controller-manager", ""},
		{"alice", "alice", "developers"},
		{"bob", "bob", "tenant-b-devs"},
		{"carol", "carol", "tenant-a-devs"},
	}
	for _, c := range clients {
		var orgs []string
		if c.org != "" {
			orgs = []string{c.org}
		}
		if err := ca.issue(p.pki, c.name, c.cn, orgs, false); err != nil {
			return err
		}
		if err := kubeconfig(filepath.Join(p.dir, c.name+".kubeconfig"), p.server, p.pki, c.name, ca.pem); err != nil {
			return err
		}
	}
	return nil
}

func (p *plane) run(stop chan os.Signal) int {
	start := time.Now()
	if err := p.start("etcd", "etcd", "--dir", filepath.Join(p.dir, "etcd"),
		"--port", strconv.Itoa(p.etcdPort), "--peer-port", strconv.Itoa(p.etcdPeer)); err != nil {
		return fail("up: %v", err)
	}
	if code := p.await(stop, "etcd", 60*time.Second, func() bool { return dial(p.etcdPort) }); code >= 0 {
		return code
	}
	if err := p.start("apiserver", "apiserver", p.apiserverFlags()...); err != nil {
		return fail("up: %v", err)
	}
	admin := newAdminClient(p.pki, p.server)
	if code := p.await(stop, "apiserver", 90*time.Second, func() bool { return admin.ok("/readyz") }); code >= 0 {
		return code
	}
	if err := p.start("controller-manager", "controller-manager", p.kcmFlags()...); err != nil {
		return fail("up: %v", err)
	}
	// The service-account controller creating `default` shows kcm is at work.
	sa := "/api/v1/namespaces/default/serviceaccounts/default"
	if code := p.await(stop, "controller-manager", 90*time.Second, func() bool { return admin.ok(sa) }); code >= 0 {
		return code
	}
	ready := fmt.Sprintf("%s\n", p.server)
	if err := os.WriteFile(filepath.Join(p.dir, "ready"), []byte(ready), 0o644); err != nil {
		return fail("up: %v", err)
	}
	_ = os.WriteFile(filepath.Join(p.dir, "gg-cluster.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	fmt.Printf("gg-cluster ready in %.1fs: %s (kubeconfigs in %s)\n", time.Since(start).Seconds(), p.server, p.dir)
	return p.supervise(stop)
}

// await polls ready until it holds; -1 means go on, anything else is the exit code.
func (p *plane) await(stop chan os.Signal, name string, limit time.Duration, ready func() bool) int {
	deadline := time.Now().Add(limit)
	for !ready() {
		select {
		case <-stop:
			return 0
		case <-p.find(name).done:
			return fail("up: %s exited early (%v); see %s", name, p.find(name).err, p.logFile(name))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fail("up: %s not ready after %s; see %s", name, limit, p.logFile(name))
		}
	}
	return -1
}

func (p *plane) supervise(stop chan os.Signal) int {
	exited := make(chan string, len(p.children))
	for _, c := range p.children {
		go func(c *child) { <-c.done; exited <- c.name }(c)
	}
	select {
	case <-stop:
		return 0
	case name := <-exited:
		return fail("up: %s exited; see %s", name, p.logFile(name))
	}
}
