package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
)

// gitServe serves the bare repositories under --root over Git's smart HTTP
// protocol (git http-backend, Git's own server, through net/http/cgi), read
// and write, on --addr (127.0.0.1:0 picks a port, written to --port-file).
// It is the Git server that Flux's source-controller clones from in the
// end-to-end tests and the demo: a real Git server, not a fake of one.
func gitServe(args []string) int {
	fs := flag.NewFlagSet("git-serve", flag.ExitOnError)
	root := fs.String("root", "", "directory holding bare repositories (NAME.git)")
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	portFile := fs.String("port-file", "", "write the bound port here once listening")
	_ = fs.Parse(args)
	if *root == "" {
		fmt.Fprintln(os.Stderr, "git-serve: --root is required")
		return 2
	}
	git, err := exec.LookPath("git")
	if err != nil {
		fmt.Fprintln(os.Stderr, "git-serve: git not found: apt-get install git")
		return 1
	}
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "git-serve: %v\n", err)
		return 1
	}
	handler := &cgi.Handler{
		Path: git,
		Args: []string{"http-backend"},
		Env: []string{
			"GIT_PROJECT_ROOT=" + *root,
			"GIT_HTTP_EXPORT_ALL=1",
			// Pushes over HTTP are refused unless a user is set (tests push from disk).
			"REMOTE_USER=gg",
		},
	}
	if *portFile != "" {
		port := listener.Addr().(*net.TCPAddr).Port
		if err := os.WriteFile(*portFile, []byte(fmt.Sprintf("%d\n", port)), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "git-serve: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "git-serve: serving %s on http://%s\n", *root, listener.Addr())
	if err := http.Serve(listener, handler); err != nil {
		fmt.Fprintf(os.Stderr, "git-serve: %v\n", err)
		return 1
	}
	return 0
}
