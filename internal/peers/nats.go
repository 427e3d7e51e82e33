package peers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/apptest"
)

var (
	natsOnce  sync.Once
	natsBin   string
	natsError error
)

// natsServer builds nats-server from the Go module flowgate depends on,
// once per test process, and returns its path.
func natsServer(t testing.TB) string {
	t.Helper()
	natsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nats-server-bin-")
		if err != nil {
			natsError = err
			return
		}
		natsBin = filepath.Join(dir, "nats-server")
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", natsBin, "github.com/nats-io/nats-server/v2")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			natsError = fmt.Errorf("go build nats-server: %v\n%s", err, out)
		}
	})
	if natsError != nil {
		t.Fatal(natsError)
	}
	return natsBin
}

// NATSCluster is a cluster of nats-server processes with JetStream on
// loopback, each with a store of its own.
type NATSCluster struct {
	t     testing.TB
	nodes []*natsNode
}

type natsNode struct {
	name       string
	client     int
	monitor    int
	cmd        *exec.Cmd
	done       chan struct{}
	out        *output
	configPath string
}

// NewNATSCluster starts n servers routed to each other and waits until
// JetStream is ready on each; they stop with the test.
func NewNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	bin := natsServer(t)
	dir := t.TempDir()
	// Ports never handed out twice: a route port taken by another server
	// keeps the cluster from forming.
	port := func() int { return apptest.FreePort(t, "tcp") }
	routes := make([]int, n)
	var routeURLs []string
	for i := range routes {
		routes[i] = port()
		routeURLs = append(routeURLs, fmt.Sprintf("nats://127.0.0.1:%d", routes[i]))
	}
	c := &NATSCluster{t: t}
	for i := range n {
		nd := &natsNode{name: fmt.Sprintf("n%d", i+1), client: port(), monitor: port(), out: &output{}}
		nd.configPath = filepath.Join(dir, nd.name+".conf")
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
max_payload: 8MB
jetstream {
  store_dir: %q
  max_file_store: 1GB
  max_memory_store: 64MB
}
cluster {
  name: flowgate-test
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, nd.name, nd.client, nd.monitor, filepath.Join(dir, nd.name), routes[i], strings.Join(routeURLs, ", "))
		if err := os.WriteFile(nd.configPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, nd)
		c.start(nd, bin)
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			nd.signal(syscall.SIGKILL)
		}
		if t.Failed() {
			for _, nd := range c.nodes {
				t.Logf("nats-server %s:\n%s", nd.name, tailLines(nd.out.String(), 20))
			}
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for _, nd := range c.nodes {
		for !nd.healthy() {
			if time.Now().After(deadline) {
				t.Fatalf("nats-server %s not ready after 60s:\n%s", nd.name, nd.out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return c
}

func (c *NATSCluster) start(nd *natsNode, bin string) {
	nd.cmd = exec.Command(bin, "-c", nd.configPath)
	nd.cmd.Stdout, nd.cmd.Stderr = nd.out, nd.out
	nd.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := nd.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	nd.done = make(chan struct{})
	go func() {
		_ = nd.cmd.Wait()
		close(nd.done)
	}()
}

func (nd *natsNode) signal(sig syscall.Signal) {
	select {
	case <-nd.done:
		return
	default:
	}
	_ = nd.cmd.Process.Signal(sig)
	<-nd.done
}

// healthy says whether the node answers /healthz with JetStream current.
func (nd *natsNode) healthy() bool {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", nd.monitor))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// URLs is the client URL of every node, comma-separated (buffer.nats_url).
func (c *NATSCluster) URLs() string {
	var urls []string
	for _, nd := range c.nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", nd.client))
	}
	return strings.Join(urls, ",")
}

// Leader is the name of the node leading a stream, asked of the live nodes.
func (c *NATSCluster) Leader(stream string) string {
	c.t.Helper()
	for _, nd := range c.nodes {
		select {
		case <-nd.done:
			continue
		default:
		}
		client := http.Client{Timeout: 2 * time.Second}
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz?accounts=true&streams=true", nd.monitor))
		if err != nil {
			continue
		}
		var jsz struct {
			Accounts []struct {
				Streams []struct {
					Name    string `json:"name"`
					Cluster struct {
						Leader string `json:"leader"`
					} `json:"cluster"`
				} `json:"stream_detail"`
			} `json:"account_details"`
		}
		err = json.NewDecoder(resp.Body).Decode(&jsz)
		resp.Body.Close()
		if err != nil {
			continue
		}
		for _, a := range jsz.Accounts {
			for _, s := range a.Streams {
				if s.Name == stream && s.Cluster.Leader != "" {
					return s.Cluster.Leader
				}
			}
		}
	}
	c.t.Fatalf("no node knows the leader of stream %s", stream)
	return ""
}

// Kill kills a node with SIGKILL, as a crash would.
func (c *NATSCluster) Kill(name string) {
	c.t.Helper()
	for _, nd := range c.nodes {
		if nd.name == name {
			nd.signal(syscall.SIGKILL)
			return
		}
	}
	c.t.Fatalf("no nats-server named %s", name)
}

// output keeps what a process writes.
type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
