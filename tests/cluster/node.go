package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The node's pod network: one bridge, one /24, on this host only.
const (
	podBridge = "gg0"
	podSubnet = "10.244.0.0/24"
)

// node runs one Kubernetes node on this host for a control plane started
// with `up --node`: containerd (Debian's, with Debian's runc and CNI
// plugins), the kubelet, kube-proxy and kube-scheduler built by
// build-node.sh. It supervises them like `up` does and, on SIGTERM, takes
// the host back to how it found it (NODE.md, "Clean-up"). One per host: the
// kubelet's port and kube-proxy's iptables chains are host-wide.
func node(args []string) int {
	fs := flag.NewFlagSet("node", flag.ExitOnError)
	dir := fs.String("dir", "", "the node's run directory (containerd, kubelet, logs)")
	clusterDir := fs.String("cluster", "", "run directory of `gg-cluster up --node`")
	bin := fs.String("bin", "", "directory holding kubelet, kube-proxy and kube-scheduler (default: beside this binary)")
	pause := fs.String("pause-image", "", "sandbox image reference, pullable by containerd (plain HTTP on 127.0.0.1)")
	timeout := fs.Duration("timeout", 90*time.Second, "deadline for the Node to be Ready")
	policies := fs.Bool("network-policies", false, "also enforce NetworkPolicy with kube-network-policies (build-netpol.sh)")
	_ = fs.Parse(args)
	if *dir == "" || *clusterDir == "" || *pause == "" {
		fmt.Fprintln(os.Stderr, "node: --dir, --cluster and --pause-image are required")
		return 2
	}
	if os.Geteuid() != 0 {
		return fail("node: must run as root (containerd, runc, iptables and the pod bridge need it)")
	}
	if *bin == "" {
		self, err := os.Executable()
		if err != nil {
			return fail("node: %v", err)
		}
		*bin = filepath.Dir(self)
	}
	n, err := newNode(*dir, *clusterDir, *bin, *pause)
	if err != nil {
		return fail("node: %v", err)
	}
	n.policies = *policies
	if n.policies {
		if _, err := os.Stat(filepath.Join(n.bin, "kube-network-policies")); err != nil {
			return fail("node: kube-network-policies missing in %s: run tests/cluster/build-netpol.sh", n.bin)
		}
	}
	unlock, err := lockHost()
	if err != nil {
		return fail("node: %v", err)
	}
	defer unlock()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	pidFile := filepath.Join(n.dir, "gg-node.pid")
	_ = os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	code := n.run(stop, *timeout)
	n.shutdown()
	_ = os.Remove(filepath.Join(n.dir, "ready"))
	_ = os.Remove(pidFile)
	if code == 0 {
		fmt.Println("gg-node stopped")
	}
	return code
}

type hostNode struct {
	*plane            // dir, logs and children, supervised as up's are
	cluster    string // up's run directory
	bin        string
	pauseImage string
	name       string // the Node's name: this host's name
	ip         net.IP
	admin      *adminClient
	ipForward  []byte // net.ipv4.ip_forward before the node set it
	policies   bool   // run the NetworkPolicy agent too
}

// The NetworkPolicy agent's nftables table (kube-network-policies' default).
const policyTable = "kube-network-policies"

func newNode(dir, cluster, bin, pause string) (*hostNode, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	cluster, err = filepath.Abs(cluster)
	if err != nil {
		return nil, err
	}
	for _, p := range []string{"kubelet", "kube-proxy", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(bin, p)); err != nil {
			return nil, fmt.Errorf("%s missing in %s: run tests/cluster/build-node.sh", p, bin)
		}
	}
	for _, p := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "ip"} {
		if _, err := exec.LookPath(p); err != nil {
			return nil, fmt.Errorf("%s not found: run scripts/prerequisites.sh (apt-get install containerd runc containernetworking-plugins iptables iproute2)", p)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		return nil, errors.New("/usr/lib/cni/bridge missing: run scripts/prerequisites.sh (apt-get install containernetworking-plugins)")
	}
	ipText, err := os.ReadFile(filepath.Join(cluster, "node-ip"))
	if err != nil {
		return nil, fmt.Errorf("%s was not started with `up --node`: %v", cluster, err)
	}
	ip := net.ParseIP(strings.TrimSpace(string(ipText)))
	server, err := os.ReadFile(filepath.Join(cluster, "ready"))
	if err != nil {
		return nil, fmt.Errorf("the control plane in %s is not ready: %v", cluster, err)
	}
	name, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(abs); err != nil {
		return nil, err
	}
	logs := filepath.Join(abs, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, err
	}
	return &hostNode{
		plane:      &plane{dir: abs, pki: filepath.Join(cluster, "pki"), logs: logs, server: strings.TrimSpace(string(server))},
		cluster:    cluster,
		bin:        bin,
		pauseImage: pause,
		name:       name,
		ip:         ip,
		admin:      newAdminClient(filepath.Join(cluster, "pki"), strings.TrimSpace(string(server))),
	}, nil
}

// lockHost takes the host-wide node lock, or says which node holds it.
func lockHost() (func(), error) {
	path := "/run/gg-cluster-node.lock"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		_ = f.Close()
		return nil, fmt.Errorf("another gg-cluster node runs on this host (%s); one node per host: "+
			"the kubelet's port 10250 and kube-proxy's iptables chains are host-wide. Stop it (make down)",
			strings.TrimSpace(string(holder)))
	}
	_ = f.Truncate(0)
	_, _ = f.WriteString(fmt.Sprintf("pid %d\n", os.Getpid()))
	return func() { _ = f.Close() }, nil
}

func (n *hostNode) path(parts ...string) string {
	return filepath.Join(append([]string{n.dir}, parts...)...)
}

func (n *hostNode) run(stop chan os.Signal, timeout time.Duration) int {
	start := time.Now()
	deadline := start.Add(timeout)
	if err := n.configure(); err != nil {
		return fail("node: %v", err)
	}
	if err := n.spawn("containerd", "containerd", "containerd", "--config", n.path("containerd.toml")); err != nil {
		return fail("node: %v", err)
	}
	if code := n.await(stop, "containerd", deadline, func() bool { return n.ctr("version") == nil }); code >= 0 {
		return code
	}
	if err := n.spawn("kubelet", filepath.Join(n.bin, "kubelet"), "kubelet",
		"--config="+n.path("kubelet.yaml"), "--kubeconfig="+filepath.Join(n.cluster, "kubelet.kubeconfig"),
		"--root-dir="+n.path("kubelet"), "--cert-dir="+n.path("kubelet", "pki"),
		"--node-ip="+n.ip.String(), "--v=1"); err != nil {
		return fail("node: %v", err)
	}
	if code := n.await(stop, "kubelet", deadline, n.ready); code >= 0 {
		return code
	}
	if err := n.spawn("kube-proxy", filepath.Join(n.bin, "kube-proxy"), "kube-proxy", "--config="+n.path("kube-proxy.yaml"), "--v=1"); err != nil {
		return fail("node: %v", err)
	}
	if n.policies {
		// The bridge CNI enforces nothing: SIG Network's agent does, on
		// this node's pod traffic (bridged traffic reaches netfilter:
		// bridge-nf-call-iptables). Patched for this kernel (build-netpol.sh).
		if err := n.spawn("kube-network-policies", filepath.Join(n.bin, "kube-network-policies"), "kube-network-policies",
			"--kubeconfig="+filepath.Join(n.cluster, "network-policies.kubeconfig"),
			"--hostname-override="+n.name, "--xt-nfqueue", "--disable-nri", "--nfqueue-id=100",
			"--metrics-bind-address=127.0.0.1:9080", "--v=2"); err != nil {
			return fail("node: %v", err)
		}
	}
	ports, err := freePorts(1)
	if err != nil {
		return fail("node: %v", err)
	}
	sched := filepath.Join(n.cluster, "kube-scheduler.kubeconfig")
	if err := n.spawn("kube-scheduler", filepath.Join(n.bin, "kube-scheduler"), "kube-scheduler",
		"--kubeconfig="+sched, "--authentication-kubeconfig="+sched, "--authorization-kubeconfig="+sched,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[0]), "--v=1"); err != nil {
		return fail("node: %v", err)
	}
	if err := writeReady(n.path("ready"), n.name); err != nil {
		return fail("node: %v", err)
	}
	fmt.Printf("gg-node %s Ready in %.1fs at %s (pods on %s)\n", n.name, time.Since(start).Seconds(), n.ip, podSubnet)
	return n.supervise(stop)
}

// ctr runs containerd's own client against this node's containerd.
func (n *hostNode) ctr(args ...string) error {
	_, err := n.ctrOutput(args...)
	return err
}

func (n *hostNode) ctrOutput(args ...string) (string, error) {
	out, err := exec.Command("ctr", append([]string{"--address", n.path("containerd.sock"), "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	return string(out), err
}

// ready is true once the Node reports the condition Ready.
func (n *hostNode) ready() bool {
	resp, err := n.admin.http.Get(n.server + "/api/v1/nodes/" + n.name)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var node struct {
		Status struct {
			Conditions []struct{ Type, Status string }
		}
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&node) != nil {
		return false
	}
	for _, c := range node.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// configure writes containerd's, the CNI's, the kubelet's and kube-proxy's
// configuration (NODE.md says why each setting is there) and turns on IP
// forwarding for the pod bridge.
func (n *hostNode) configure() error {
	containerd := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  # Root here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj to the
  # kubelet's -998 for sandboxes, and every sandbox would fail (NODE.md).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[6]q
`, n.path("containerd", "root"), n.path("containerd", "state"), n.path("containerd.sock"),
		n.path("containerd.sock.ttrpc"), n.pauseImage, n.path("cni", "conf"))
	cni := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "gg-pods",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
`, podBridge, podSubnet, n.path("cni", "ipam"))
	kubelet := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This host has cgroup v1 controllers; 1.35+ refuses them unless told.
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%[1]s
imageServiceEndpoint: unix://%[1]s
podLogsDir: %[2]q
address: %[3]s
readOnlyPort: 0
# The apiserver reaches the kubelet (logs, exec, port-forward) with its
# kubelet-client certificate; the kubelet asks the apiserver who may.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[4]q}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: []
resolvConf: /etc/resolv.conf
serializeImagePulls: false
# A test node on a shared disk: never evict, never collect images.
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
enforceNodeAllocatable: []
makeIPTablesUtilChains: false
`, n.path("containerd.sock"), n.path("pod-logs"), n.ip, filepath.Join(n.pki, "ca.crt"))
	proxy := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %q}
mode: iptables
clusterCIDR: %s
bindAddress: 0.0.0.0
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Leave the host's conntrack sysctls alone.
conntrack: {maxPerCore: 0}
`, filepath.Join(n.cluster, "kube-proxy.kubeconfig"), podSubnet)
	for _, d := range []string{n.path("cni", "conf"), n.path("cni", "ipam"), n.path("pod-logs"), n.path("kubelet", "pki")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		n.path("containerd.toml"):                    containerd,
		n.path("cni", "conf", "10-gg-pods.conflist"): cni,
		n.path("kubelet.yaml"):                       kubelet,
		n.path("kube-proxy.yaml"):                    proxy,
	}
	for path, body := range files {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			return err
		}
	}
	forward := "/proc/sys/net/ipv4/ip_forward"
	before, err := os.ReadFile(forward)
	if err != nil {
		return err
	}
	n.ipForward = before
	return os.WriteFile(forward, []byte("1\n"), 0o644)
}

// shutdown stops the node in the order that leaves nothing behind: the
// scheduler first (nothing new is placed), then every Pod on the node is
// deleted and awaited while the kubelet still runs, so it tears down their
// sandboxes and the CNI releases their addresses and rules. Then the
// components stop (kube-proxy, kubelet, containerd), and the host state
// they made is removed: leftover tasks and shims, mounts under the run
// directory, kube-proxy's and the kubelet's iptables chains, the bridge,
// ip_forward.
func (n *hostNode) shutdown() {
	if len(n.children) == 0 {
		n.restoreHost()
		return
	}
	if s := n.find("kube-scheduler"); s.cmd != nil {
		s.stop("node", 15*time.Second)
	}
	if k := n.find("kubelet"); k.cmd != nil {
		select {
		case <-k.done:
		default:
			n.drainPods(45 * time.Second)
		}
	}
	for _, name := range []string{"kube-network-policies", "kube-proxy", "kubelet"} {
		if c := n.find(name); c.cmd != nil {
			c.stop("node", 15*time.Second)
		}
	}
	if c := n.find("containerd"); c.cmd != nil {
		n.killTasks()
		c.stop("node", 15*time.Second)
	}
	n.killShims()
	n.restoreHost()
}

// drainPods deletes the Pods bound to this node and waits until containerd
// runs no sandbox. Controllers recreate theirs, but with the scheduler
// stopped the new ones stay Pending.
func (n *hostNode) drainPods(limit time.Duration) {
	resp, err := n.admin.http.Get(n.server + "/api/v1/pods?fieldSelector=spec.nodeName%3D" + n.name)
	if err == nil {
		var list struct {
			Items []struct {
				Metadata struct{ Name, Namespace string }
			}
		}
		if json.NewDecoder(resp.Body).Decode(&list) == nil {
			for _, p := range list.Items {
				url := fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s?gracePeriodSeconds=5", n.server, p.Metadata.Namespace, p.Metadata.Name)
				if req, err := http.NewRequest(http.MethodDelete, url, nil); err == nil {
					if r, err := n.admin.http.Do(req); err == nil {
						_ = r.Body.Close()
					}
				}
			}
		}
		_ = resp.Body.Close()
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		out, err := n.ctrOutput("tasks", "ls", "-q")
		if err == nil && strings.TrimSpace(out) == "" {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "node: sandboxes still running after %s; killing them\n", limit)
}

// killTasks kills whatever containerd still runs (a kubelet that died early).
func (n *hostNode) killTasks() {
	out, err := n.ctrOutput("tasks", "ls", "-q")
	if err != nil {
		return
	}
	for _, id := range strings.Fields(out) {
		_ = n.ctr("tasks", "kill", "--signal", "SIGKILL", id)
	}
	time.Sleep(500 * time.Millisecond)
	for _, id := range strings.Fields(out) {
		_ = n.ctr("tasks", "delete", "--force", id)
	}
}

// killShims kills the runc shims of this containerd: they outlive it by design.
func (n *hostNode) killShims() {
	sock := n.path("containerd.sock")
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmdline, "containerd-shim") && strings.Contains(cmdline, sock) {
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// restoreHost undoes the node's host-wide state. Each step is best effort
// and idempotent; what fails is reported, not fatal.
func (n *hostNode) restoreHost() {
	n.unmountUnder(n.dir)
	if err := exec.Command(filepath.Join(n.bin, "kube-proxy"), "--cleanup").Run(); err != nil {
		fmt.Fprintf(os.Stderr, "node: kube-proxy --cleanup: %v\n", err)
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		removeChains(tool, "KUBE-")
		removeChains(tool, "CNI-")
	}
	// The agent removes its table when it stops; one left by a crash goes here.
	if _, err := exec.LookPath("nft"); err == nil && n.policies {
		_ = exec.Command("nft", "delete", "table", "inet", policyTable).Run()
	}
	_ = exec.Command("ip", "link", "delete", podBridge).Run()
	// libcni's cache of this network's results (containerd keeps it there).
	if cached, err := filepath.Glob("/var/lib/cni/results/gg-pods-*"); err == nil {
		for _, f := range cached {
			_ = os.Remove(f)
		}
	}
	if n.ipForward != nil {
		_ = os.WriteFile("/proc/sys/net/ipv4/ip_forward", n.ipForward, 0o644)
	}
}

// unmountUnder detaches every mount below dir, deepest first (overlay
// rootfs, sandbox shm, projected volumes).
func (n *hostNode) unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			points = append(points, f[1])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, m := range points {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			fmt.Fprintf(os.Stderr, "node: unmount %s: %v\n", m, err)
		}
	}
}

// removeChains deletes, in every table, the chains whose names start with
// prefix and the rules that jump to them. Only Kubernetes' and the CNI's
// own chains carry these prefixes.
func removeChains(tool, prefix string) {
	for _, table := range []string{"filter", "nat", "mangle", "raw"} {
		out, err := exec.Command(tool, "-w", "-t", table, "-S").Output()
		if err != nil {
			continue
		}
		var chains []string
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) == 2 && f[0] == "-N" && strings.HasPrefix(f[1], prefix):
				chains = append(chains, f[1])
			case len(f) > 2 && f[0] == "-A" && !strings.HasPrefix(f[1], prefix) && strings.Contains(line, "-j "+prefix):
				// A built-in (or foreign) chain jumping into ours: delete that rule.
				_ = exec.Command(tool, append([]string{"-w", "-t", table, "-D"}, f[1:]...)...).Run()
			}
		}
		for _, c := range chains {
			_ = exec.Command(tool, "-w", "-t", table, "-F", c).Run()
		}
		for _, c := range chains {
			_ = exec.Command(tool, "-w", "-t", table, "-X", c).Run()
		}
	}
}

// hostAddress is the IPv4 address of the interface holding the default
// route, else of the first interface that is up and not loopback: the
// address Pods reach the apiserver on.
func hostAddress() (net.IP, error) {
	if b, err := os.ReadFile("/proc/net/route"); err == nil {
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 2 && f[1] == "00000000" {
				if ip := interfaceIPv4(f[0]); ip != nil {
					return ip, nil
				}
			}
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for _, i := range ifaces {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagLoopback == 0 && i.Name != podBridge {
			if ip := interfaceIPv4(i.Name); ip != nil {
				return ip, nil
			}
		}
	}
	return nil, errors.New("no IPv4 address on any interface but loopback: Pods would have no way to the apiserver")
}

func interfaceIPv4(name string) net.IP {
	i, err := net.InterfaceByName(name)
	if err != nil {
		return nil
	}
	addrs, err := i.Addrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.To4()
		}
	}
	return nil
}
