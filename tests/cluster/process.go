package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func (p *plane) logFile(name string) string { return filepath.Join(p.logs, name+".log") }

func (p *plane) find(name string) *child {
	for _, c := range p.children {
		if c.name == name {
			return c
		}
	}
	return &child{done: make(chan struct{})}
}

// start re-executes this binary as one component, logging to logs/NAME.log.
// argv[0] is the upstream program's name: client-go derives the user agent,
// and so the apiserver the default field manager, from it. The
// controller-manager's writes then carry the field manager
// kube-controller-manager, as in real clusters (and as the guard's policy
// names it), not gg-cluster.
func (p *plane) start(name, sub string, args ...string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	argv0 := map[string]string{"apiserver": "kube-apiserver", "controller-manager": "kube-controller-manager"}[sub]
	if argv0 == "" {
		argv0 = "gg-cluster"
	}
	return p.spawn(name, self, argv0, append([]string{sub}, args...)...)
}

// spawn starts program (as argv0) as a supervised child, logging to
// logs/NAME.log.
func (p *plane) spawn(name, program, argv0 string, args ...string) error {
	log, err := os.Create(p.logFile(name))
	if err != nil {
		return err
	}
	cmd := exec.Command(program, args...)
	cmd.Args[0] = argv0
	cmd.Stdout, cmd.Stderr = log, log
	// Own process group: a Ctrl-C or a group SIGTERM reaches only the
	// supervisor, which stops the children in order. Pdeathsig kills them if
	// the supervisor itself is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); _ = log.Close(); close(c.done) }()
	p.children = append(p.children, c)
	return nil
}

// shutdown stops the children in reverse order of start (controller-manager,
// apiserver, etcd): SIGTERM, then SIGKILL for one still running after 10 s.
func (p *plane) shutdown() {
	for i := len(p.children) - 1; i >= 0; i-- {
		p.children[i].stop("up", 10*time.Second)
	}
}

// stop sends SIGTERM and waits; SIGKILL after grace.
func (c *child) stop(who string, grace time.Duration) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		fmt.Fprintf(os.Stderr, "%s: %s ignored SIGTERM for %s; killing it\n", who, c.name, grace)
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// died reports a component that failed, with the end of its log, and returns
// the exit code; up() then stops the other components.
func (p *plane) died(name, what string) int {
	log := p.logFile(name)
	fmt.Fprintf(os.Stderr, "up: %s %s; see %s\n", name, what, log)
	b, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	for _, l := range lines {
		if l != "" {
			fmt.Fprintf(os.Stderr, "  | %s\n", l)
		}
	}
	if strings.Contains(string(b), "address already in use") {
		if name == "apiserver" {
			fmt.Fprintf(os.Stderr, "up: port 127.0.0.1:%d is in use; pass --port or run make down\n", p.apiPort)
		} else {
			fmt.Fprintf(os.Stderr, "up: a port picked for %s was taken meanwhile; run up again\n", name)
		}
	}
	return 1
}

func (p *plane) apiserverFlags() []string {
	pki := func(f string) string { return filepath.Join(p.pki, f) }
	// Without a node, the apiserver is for this host only, and the
	// kubernetes Service has no endpoint (Endpoints refuse 127.0.0.1).
	listen := []string{"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none"}
	if p.nodeIP != nil {
		// Pods reach it through the kubernetes Service (10.0.0.1:443), which
		// kube-proxy sends to the advertised address; it dials kubelets by
		// InternalIP (the node's hostname need not resolve).
		listen = []string{"--bind-address=0.0.0.0", "--advertise-address=" + p.nodeIP.String(),
			"--endpoint-reconciler-type=lease",
			"--kubelet-client-certificate=" + pki("apiserver-kubelet-client.crt"),
			"--kubelet-client-key=" + pki("apiserver-kubelet-client.key"),
			"--kubelet-preferred-address-types=InternalIP,Hostname"}
	}
	return append(listen,
		"--etcd-servers=http://127.0.0.1:"+strconv.Itoa(p.etcdPort),
		"--secure-port="+strconv.Itoa(p.apiPort),
		"--tls-cert-file="+pki("apiserver.crt"), "--tls-private-key-file="+pki("apiserver.key"),
		"--client-ca-file="+pki("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--api-audiences=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pki("sa.pub"), "--service-account-signing-key-file="+pki("sa.key"),
		"--authorization-mode=Node,RBAC", "--service-cluster-ip-range=10.0.0.0/24", "--allow-privileged=true",
		"--cert-dir="+filepath.Join(p.dir, "apiserver-certs"),
		"--profiling=false", "--v=1",
	)
}

func (p *plane) kcmFlags() []string {
	pki := func(f string) string { return filepath.Join(p.pki, f) }
	kc := filepath.Join(p.dir, "controller-manager.kubeconfig")
	return []string{
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--use-service-account-credentials=true", "--service-account-private-key-file=" + pki("sa.key"),
		"--root-ca-file=" + pki("ca.crt"),
		"--cluster-signing-cert-file=" + pki("ca.crt"), "--cluster-signing-key-file=" + pki("ca.key"),
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(p.kcmPort),
		"--profiling=false", "--v=1",
	}
}

// adminClient talks to the apiserver with the admin client certificate.
type adminClient struct {
	http   *http.Client
	server string
}

func newAdminClient(pki, server string) *adminClient {
	pool := x509.NewCertPool()
	if ca, err := os.ReadFile(filepath.Join(pki, "ca.crt")); err == nil {
		pool.AppendCertsFromPEM(ca)
	}
	cert, _ := tls.LoadX509KeyPair(filepath.Join(pki, "admin.crt"), filepath.Join(pki, "admin.key"))
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	return &adminClient{http: &http.Client{Transport: transport, Timeout: 2 * time.Second}, server: server}
}

func (a *adminClient) ok(path string) bool {
	resp, err := a.http.Get(a.server + path)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func dial(port int) bool {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// freePorts picks n distinct free ports, holding each open until all are picked.
func freePorts(n int) ([]int, error) {
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeReady writes a ready file holding line: whole, then renamed, so a
// reader never sees a partial file.
func writeReady(path, line string) error {
	if err := os.WriteFile(path+".tmp", []byte(line+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
