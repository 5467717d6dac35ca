package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
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
	timeout := fs.Duration("timeout", 90*time.Second, "deadline for etcd, apiserver and controller-manager together")
	node := fs.Bool("node", false, "serve Pods on this host's address too: the apiserver listens there, "+
		"the kubernetes Service gets an endpoint, and node identities are issued for `gg-cluster node`")
	_ = fs.Parse(args)
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "up: --dir is required")
		return 2
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fail("up: %v", err)
	}
	p := &plane{dir: abs, pki: filepath.Join(abs, "pki"), logs: filepath.Join(abs, "logs"), timeout: *timeout}
	if *node {
		ip, err := hostAddress()
		if err != nil {
			return fail("up: --node: %v", err)
		}
		p.nodeIP = ip
	}
	if pid := p.running(); pid != 0 {
		return fail("up: gg-cluster (pid %d) is already running in %s; stop it (kill %d) or run make down", pid, abs, pid)
	}
	// Catch signals before the first child exists, so none is left behind.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	if err := p.prepare(*port); err != nil {
		return fail("up: %v", err)
	}
	pidFile := filepath.Join(abs, "gg-cluster.pid")
	_ = os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	code := p.run(stop)
	p.shutdown()
	_ = os.Remove(filepath.Join(abs, "ready"))
	_ = os.Remove(pidFile)
	if code == 0 {
		fmt.Println("gg-cluster stopped")
	}
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
	// nodeIP is set with --node: the host address Pods reach the apiserver on.
	nodeIP   net.IP
	timeout  time.Duration
	children []*child
}

// running returns the pid of a live gg-cluster already supervising p.dir, or 0.
func (p *plane) running() int {
	b, err := os.ReadFile(filepath.Join(p.dir, "gg-cluster.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || pid == os.Getpid() || syscall.Kill(pid, 0) != nil {
		return 0
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil &&
		!strings.Contains(string(cmdline), "gg-cluster") {
		return 0 // a stale file whose pid now belongs to something else
	}
	return pid
}

// prepare makes a fresh cluster in p.dir: state from an earlier run (etcd data,
// PKI, a stale ready file) is replaced, since new keys would not match it.
func (p *plane) prepare(port int) error {
	if port != 0 && !portFree(port) {
		return fmt.Errorf("port 127.0.0.1:%d is in use; pass --port or run make down", port)
	}
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	p.apiPort, p.etcdPort, p.etcdPeer, p.kcmPort = ports[0], ports[1], ports[2], ports[3]
	if port != 0 {
		p.apiPort = port
	}
	_ = os.Remove(filepath.Join(p.dir, "ready"))
	for _, d := range []string{"etcd", "apiserver-certs", "pki", "logs"} {
		if err := os.RemoveAll(filepath.Join(p.dir, d)); err != nil {
			return err
		}
	}
	for _, d := range []string{p.pki, p.logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
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
	serving := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")}
	if p.nodeIP != nil {
		serving = append(serving, p.nodeIP)
	}
	if err := ca.issue(p.pki, "apiserver", "kube-apiserver", nil, serving); err != nil {
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
	if p.nodeIP != nil {
		host, err := os.Hostname()
		if err != nil {
			return err
		}
		// The node's components, each as the identity upstream binds its
		// default RBAC to (and the Node authorizer, for the kubelet).
		clients = append(clients, []struct{ name, cn, org string }{
			{"kubelet", "system:node:" + host, "system:nodes"},
			{"kube-proxy", "system:kube-proxy", ""},
			{"kube-scheduler", "system:kube-scheduler", ""},
			// The NetworkPolicy agent (network-policies.yaml grants it).
			{"network-policies", "system:kube-network-policies", ""},
			// The apiserver's client certificate towards kubelets (logs, exec).
			{"apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"},
		}...)
		if err := writeFile(filepath.Join(p.dir, "node-ip"), []byte(p.nodeIP.String()+"\n")); err != nil {
			return err
		}
	}
	for _, c := range clients {
		var orgs []string
		if c.org != "" {
			orgs = []string{c.org}
		}
		if err := ca.issue(p.pki, c.name, c.cn, orgs, nil); err != nil {
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
	deadline := start.Add(p.timeout)
	if err := p.start("etcd", "etcd", "--dir", filepath.Join(p.dir, "etcd"),
		"--port", strconv.Itoa(p.etcdPort), "--peer-port", strconv.Itoa(p.etcdPeer)); err != nil {
		return fail("up: %v", err)
	}
	if code := p.await(stop, "etcd", deadline, func() bool { return dial(p.etcdPort) }); code >= 0 {
		return code
	}
	if err := p.start("apiserver", "apiserver", p.apiserverFlags()...); err != nil {
		return fail("up: %v", err)
	}
	admin := newAdminClient(p.pki, p.server)
	if code := p.await(stop, "apiserver", deadline, func() bool { return admin.ok("/readyz") }); code >= 0 {
		return code
	}
	if err := p.start("controller-manager", "controller-manager", p.kcmFlags()...); err != nil {
		return fail("up: %v", err)
	}
	// The service-account controller creating `default` shows kcm is at work.
	sa := "/api/v1/namespaces/default/serviceaccounts/default"
	if code := p.await(stop, "controller-manager", deadline, func() bool { return admin.ok(sa) }); code >= 0 {
		return code
	}
	if err := writeReady(filepath.Join(p.dir, "ready"), p.server); err != nil {
		return fail("up: %v", err)
	}
	fmt.Printf("gg-cluster ready in %.1fs: %s (kubeconfigs in %s)\n", time.Since(start).Seconds(), p.server, p.dir)
	return p.supervise(stop)
}

// await polls ready until it holds; -1 means go on, anything else is the exit code.
func (p *plane) await(stop chan os.Signal, name string, deadline time.Time, ready func() bool) int {
	c := p.find(name)
	for !ready() {
		select {
		case <-stop:
			return 0
		case <-c.done:
			return p.died(name, fmt.Sprintf("exited early (%v)", c.err))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return p.died(name, fmt.Sprintf("not ready within %s", p.timeout))
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
		// A signal to the whole process group reaches a child first: that is a stop.
		select {
		case <-stop:
			return 0
		case <-time.After(500 * time.Millisecond):
		}
		return p.died(name, fmt.Sprintf("exited (%v)", p.find(name).err))
	}
}
