package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

const (
	testVersion = "1.2.3~test"
	testTag     = "1.2.3-test"
	imageName   = defaultName
)

// built is the image scripts/image made once for every test of this file.
type built struct {
	out, layout, archive string
	config               imageConfigDoc
	layer                []byte // the gzipped layer
}

// imageConfigDoc is the part of the image configuration a runtime reads.
type imageConfigDoc struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		User         string
		ExposedPorts map[string]struct{}
		Env          []string
		Entrypoint   []string
		Cmd          []string
		Volumes      map[string]struct{}
		WorkingDir   string
		Labels       map[string]string
		Healthcheck  healthcheck
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

func repoRoot() string { return filepath.Join("..", "..") }

// buildImage runs scripts/image as `make image` does, into a temporary folder.
func buildImage(t *testing.T) built {
	t.Helper()
	out := t.TempDir()
	root, err := filepath.Abs(repoRoot())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "image"), out)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "VERSION="+testVersion)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/image: %v\n%s", err, b)
	}
	b := built{out: out, layout: filepath.Join(out, "oci"),
		archive: filepath.Join(out, fmt.Sprintf("flowgate-%s-linux-%s.tar", testTag, runtime.GOARCH))}

	// index.json -> manifest -> config and layer, as a registry client reads them.
	var index ociIndex
	readJSON(t, filepath.Join(b.layout, "index.json"), &index)
	var refs []string
	for _, m := range index.Manifests {
		refs = append(refs, m.Annotations[refNameAnnotation])
	}
	if !slices.Equal(refs, []string{testTag, "latest"}) {
		t.Fatalf("index.json tags %q, want %q and latest", refs, testTag)
	}
	var manifest ociManifest
	readJSON(t, blob(t, b.layout, index.Manifests[0].Digest), &manifest)
	readJSON(t, blob(t, b.layout, manifest.Config.Digest), &b.config)
	if len(manifest.Layers) != 1 || manifest.Layers[0].MediaType != mediaTypeLayer {
		t.Fatalf("layers %+v, want one gzipped tar", manifest.Layers)
	}
	b.layer, err = os.ReadFile(blob(t, b.layout, manifest.Layers[0].Digest))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// blob returns the path of a blob after checking its content has its digest.
func blob(t *testing.T, layout, digest string) string {
	t.Helper()
	p := filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); "sha256:"+hex.EncodeToString(sum[:]) != digest {
		t.Fatalf("blob %s does not have its digest", digest)
	}
	return p
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestImage builds the image with scripts/image, checks what a container
// runtime reads from it (settings, files, owners, the Docker tarball), then
// unpacks it with umoci and runs its entrypoint as its user in a chroot:
// it must serve /healthz and /readyz, pass its own healthcheck and ship a
// NetFlow datagram's flow.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and the image: not in -short")
	}
	img := buildImage(t)

	t.Run("settings", func(t *testing.T) {
		c := img.config.Config
		if img.config.Architecture != runtime.GOARCH || img.config.OS != "linux" {
			t.Errorf("platform %s/%s, want linux/%s", img.config.OS, img.config.Architecture, runtime.GOARCH)
		}
		if c.User != "65532:65532" {
			t.Errorf("User %q, want 65532:65532 (non-root)", c.User)
		}
		if !slices.Equal(c.Entrypoint, []string{"/usr/bin/flowgate"}) || !slices.Equal(c.Cmd, []string{"run", "--config", "/intakes.yaml"}) {
			t.Errorf("Entrypoint %q Cmd %q", c.Entrypoint, c.Cmd)
		}
		wantHealth := healthcheck{Test: []string{"CMD", "/usr/bin/flowgate", "healthcheck", "--config", "/intakes.yaml"},
			Interval: 30 * time.Second, Timeout: 10 * time.Second, StartPeriod: 2 * time.Minute, Retries: 3}
		if !slices.Equal(c.Healthcheck.Test, wantHealth.Test) || c.Healthcheck.Interval != wantHealth.Interval ||
			c.Healthcheck.Timeout != wantHealth.Timeout || c.Healthcheck.StartPeriod != wantHealth.StartPeriod || c.Healthcheck.Retries != wantHealth.Retries {
			t.Errorf("Healthcheck %+v, want %+v", c.Healthcheck, wantHealth)
		}
		if _, ok := c.Volumes["/var/lib/flowgate"]; !ok || len(c.Volumes) != 1 || c.WorkingDir != "/var/lib/flowgate" {
			t.Errorf("Volumes %v WorkingDir %q, want the buffer /var/lib/flowgate", c.Volumes, c.WorkingDir)
		}
		want := []string{"514/tcp", "514/udp", "6514/tcp", "2055/udp", "4739/udp", "6343/udp", "9740/tcp", "20516/tcp", "20566/udp"}
		for _, p := range want {
			if _, ok := c.ExposedPorts[p]; !ok {
				t.Errorf("port %s not exposed", p)
			}
		}
		if n := len(c.ExposedPorts); n != 7+2*51 {
			t.Errorf("%d ports exposed, want %d", n, 7+2*51)
		}
		if c.Labels["org.opencontainers.image.version"] != testVersion || c.Labels["org.opencontainers.image.licenses"] != "Apache-2.0" {
			t.Errorf("labels %v", c.Labels)
		}
	})

	t.Run("files", func(t *testing.T) {
		zr, err := gzip.NewReader(bytes.NewReader(img.layer))
		if err != nil {
			t.Fatal(err)
		}
		tarball, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(tarball); "sha256:"+hex.EncodeToString(sum[:]) != img.config.RootFS.DiffIDs[0] {
			t.Errorf("the layer's diff_id is not the digest of its tar")
		}
		type entry struct {
			mode     fs.FileMode
			uid, gid int
			data     []byte
		}
		files := map[string]entry{}
		tr := tar.NewReader(bytes.NewReader(tarball))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(tr)
			files["/"+strings.TrimSuffix(h.Name, "/")] = entry{h.FileInfo().Mode(), h.Uid, h.Gid, data}
		}
		var names []string
		for name := range files {
			names = append(names, name)
		}
		slices.Sort(names)
		wantNames := []string{"/etc", "/etc/group", "/etc/passwd", "/etc/ssl", "/etc/ssl/certs", caBundlePath,
			"/home", "/home/nonroot", "/tmp", "/usr", "/usr/bin", "/usr/bin/flowgate", "/var", "/var/lib", "/var/lib/flowgate"}
		if !slices.Equal(names, wantNames) {
			t.Errorf("files %q, want %q", names, wantNames)
		}
		check := func(name string, mode fs.FileMode, uid int) {
			t.Helper()
			if e := files[name]; e.mode != mode || e.uid != uid || e.gid != uid {
				t.Errorf("%s: %v %d:%d, want %v %d:%d", name, e.mode, e.uid, e.gid, mode, uid, uid)
			}
		}
		check("/usr/bin/flowgate", 0o755, 0)
		check("/var/lib/flowgate", fs.ModeDir|0o750, 65532)
		check("/tmp", fs.ModeDir|fs.ModeSticky|0o777, 0)
		check(caBundlePath, 0o644, 0)
		if !strings.Contains(string(files["/etc/passwd"].data), "nonroot:x:65532:65532:") ||
			!strings.Contains(string(files["/etc/group"].data), "nonroot:x:65532:") {
			t.Errorf("passwd and group lack the user 65532:\n%s%s", files["/etc/passwd"].data, files["/etc/group"].data)
		}
		host, err := os.ReadFile(caBundlePath)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(files[caBundlePath].data, host) {
			t.Errorf("the CA bundle is not this machine's %s", caBundlePath)
		}
		bin := filepath.Join(t.TempDir(), "flowgate")
		if err := os.WriteFile(bin, files["/usr/bin/flowgate"].data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := checkStatic(bin); err != nil {
			t.Error(err)
		}
		out, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), testVersion) {
			t.Errorf("flowgate version: %v %s, want %s", err, out, testVersion)
		}
	})

	t.Run("docker tarball", func(t *testing.T) {
		f, err := os.Open(img.archive)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		tr := tar.NewReader(f)
		var names []string
		var manifest []struct{ Config, RepoTags, Layers any }
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, h.Name)
			if h.Name == "manifest.json" {
				if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, want := range []string{"oci-layout", "index.json", "manifest.json"} {
			if !slices.Contains(names, want) {
				t.Errorf("%s lacks %s: %q", img.archive, want, names)
			}
		}
		if len(manifest) != 1 || fmt.Sprint(manifest[0].RepoTags) != fmt.Sprintf("[%s:%s %s:latest]", imageName, testTag, imageName) {
			t.Errorf("manifest.json %+v, want the tags %s:%s and :latest", manifest, imageName, testTag)
		}
		// skopeo reads it as `docker load` does, through manifest.json, and
		// checks every digest while copying.
		if _, err := exec.LookPath("skopeo"); err != nil {
			t.Skip("skopeo not installed (apt-get install skopeo): the tarball is not read by a second implementation")
		}
		// Docker reads the config manifest.json names, with the
		// healthcheck; skopeo's copy into a folder keeps that blob as it is.
		var dockerConfig imageConfigDoc
		for _, src := range []string{"oci-archive:" + img.archive + ":" + testTag, "docker-archive:" + img.archive} {
			dir := t.TempDir()
			if out, err := exec.Command("skopeo", "copy", "--quiet", src, "dir:"+dir).CombinedOutput(); err != nil {
				t.Fatalf("skopeo copy %s: %v\n%s", src, err, out)
			}
			var m ociManifest
			readJSON(t, filepath.Join(dir, "manifest.json"), &m)
			readJSON(t, filepath.Join(dir, strings.TrimPrefix(m.Config.Digest, "sha256:")), &dockerConfig)
		}
		if c := dockerConfig.Config; c.User != "65532:65532" || !slices.Equal(c.Healthcheck.Test, img.config.Config.Healthcheck.Test) {
			t.Errorf("the docker tarball's config: user %q healthcheck %v", c.User, c.Healthcheck)
		}
	})

	t.Run("run", func(t *testing.T) { runImage(t, img) })
}

// runImage unpacks the image with umoci (a second reader of the layout,
// which also turns the image's settings into a runtime's: user, args,
// environment, working directory) and runs it as a container runtime
// would, without namespaces: chroot into the root filesystem, then the
// image's uid and gid, no supplementary groups.
func runImage(t *testing.T, img built) {
	if os.Geteuid() != 0 {
		t.Skip("running the image needs root (chroot and another uid); the files and settings were checked")
	}
	if _, err := exec.LookPath("umoci"); err != nil {
		t.Skip("umoci not installed (apt-get install umoci): the image is not unpacked and run")
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command("umoci", "unpack", "--image", img.layout+":"+testTag, bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	var spec struct {
		Process struct {
			User struct {
				UID, GID       uint32
				AdditionalGids []uint32
			}
			Args []string
			Env  []string
			Cwd  string
		}
	}
	readJSON(t, filepath.Join(bundle, "config.json"), &spec)
	p := spec.Process
	if p.User.UID != 65532 || p.User.GID != 65532 || p.Cwd != "/var/lib/flowgate" ||
		!slices.Equal(p.Args, []string{"/usr/bin/flowgate", "run", "--config", "/intakes.yaml"}) {
		t.Fatalf("umoci's runtime spec: %+v", p)
	}
	rootfs := filepath.Join(bundle, "rootfs")

	// The configuration a user mounts on /intakes.yaml: a NetFlow intake,
	// events to stdout, monitoring on loopback (the chroot shares this
	// machine's network).
	httpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(apptest.FreePort(t, "tcp")))
	flowPort := apptest.FreePort(t, "udp")
	config := fmt.Sprintf(`intakes:
  - name: Routers
    protocol: netflow
    port: %d
    intake_key: image-test-intake-key
output:
  transport: file
  path: "-"
http:
  listen: %s
`, flowPort, httpAddr)
	if err := os.WriteFile(filepath.Join(rootfs, "intakes.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	inImage := func(args ...string) *exec.Cmd {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = p.Env
		cmd.Dir = p.Cwd // after the chroot, as the user: the folder must be the user's
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Chroot:     rootfs,
			Credential: &syscall.Credential{Uid: p.User.UID, Gid: p.User.GID, Groups: p.User.AdditionalGids},
			Pdeathsig:  syscall.SIGKILL,
		}
		return cmd
	}

	cmd := inImage(p.Args...)
	var stdout, stderr apptest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("the entrypoint: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("flowgate in the image:\n%s", stderr.String())
		}
	}()
	exited := func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
			return false
		}
	}

	get := func(path string) int {
		client := http.Client{Timeout: 5 * time.Second}
		resp, err := client.Get("http://" + httpAddr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if !apptest.Eventually(60*time.Second, func() bool { return exited() || get(path) == http.StatusOK }) || exited() {
			t.Fatalf("%s not 200 within 60s (exited: %v)", path, exited())
		}
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^Uid:\s+65532\s+65532\s+65532\s+65532$`).Match(status) ||
		!regexp.MustCompile(`(?m)^Gid:\s+65532\s+65532\s+65532\s+65532$`).Match(status) {
		t.Errorf("the entrypoint does not run as 65532:65532:\n%s", status)
	}

	// The image's own healthcheck, as Docker runs it: in the container, as its user.
	health := inImage(img.config.Config.Healthcheck.Test[1:]...)
	if out, err := health.CombinedOutput(); err != nil {
		t.Errorf("healthcheck %q: %v\n%s", img.config.Config.Healthcheck.Test[1:], err, out)
	}

	// A flow through the image: decoded, buffered in the volume, shipped.
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", flowPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	datagram := testtraffic.NetFlowV5(nil, []uint32{7}, 0, time.Now())
	source := testtraffic.V5Source(7).String()
	polls := 0
	if !apptest.Eventually(30*time.Second, func() bool {
		// Again about every second: a datagram may be lost before the
		// socket's first read.
		if polls%50 == 0 {
			if _, err := conn.Write(datagram); err != nil {
				t.Fatal(err)
			}
		}
		polls++
		return strings.Contains(stdout.String(), source)
	}) {
		t.Fatalf("no event from %s on stdout within 30s:\n%s", source, stdout.String())
	}

	// The buffer is written in the volume, by the user. flowgate runs on:
	// a block the store removes during the walk is skipped.
	var stored int
	err = filepath.WalkDir(filepath.Join(rootfs, "var/lib/flowgate"), func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		if st.Uid != 65532 || st.Gid != 65532 {
			t.Errorf("%s owned by %d:%d, want 65532:65532", path, st.Uid, st.Gid)
		}
		if !d.IsDir() {
			stored++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if stored == 0 {
		t.Error("nothing written in /var/lib/flowgate: the buffer is elsewhere")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Errorf("after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(60 * time.Second):
		t.Error("still running 60s after SIGTERM")
	}
}

// TestCompose checks that deploy/docker-compose.yml works from a checkout
// (it builds from the Dockerfile, under the name a release pushes and
// scripts/image tags) and publishes every port the image exposes and
// every port of the example intakes.yaml, with its protocol.
func TestCompose(t *testing.T) {
	compose, err := os.ReadFile(filepath.Join(repoRoot(), "deploy", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	field := func(key string) string {
		m := regexp.MustCompile(`(?m)^\s+` + key + `:\s*(\S+)\s*$`).FindSubmatch(compose)
		if m == nil {
			t.Fatalf("docker-compose.yml: no %s", key)
		}
		return string(m[1])
	}
	if image := field("image"); image != defaultName+":latest" {
		t.Errorf("image %s, want %s:latest", image, defaultName)
	}
	context := filepath.Join(repoRoot(), "deploy", field("context"))
	if _, err := os.Stat(filepath.Join(context, field("dockerfile"))); err != nil {
		t.Errorf("build: %v", err)
	}

	published := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+- "(?:[\d.]+:)?(\d+)(?:-(\d+))?:\d+(?:-\d+)?(?:/(tcp|udp))?"`).FindAllSubmatch(compose, -1) {
		proto := string(m[3])
		if proto == "" {
			proto = "tcp"
		}
		spec := string(m[1])
		if len(m[2]) > 0 {
			spec += "-" + string(m[2])
		}
		ports, err := expandPorts(spec + "/" + proto)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			published[p] = true
		}
	}

	rt, err := readDockerfile(filepath.Join(repoRoot(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rt.Ports {
		if !published[p] {
			t.Errorf("the image exposes %s; docker-compose.yml does not publish it", p)
		}
	}

	intakes, err := os.ReadFile(filepath.Join(repoRoot(), "deploy", "intakes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	transport := map[string]string{"tcp": "tcp", "tls": "tcp", "udp": "udp", "netflow": "udp", "sflow": "udp"}
	found := regexp.MustCompile(`protocol:\s*(\w+)\s*\n\s*port:\s*(\d+)`).FindAllSubmatch(intakes, -1)
	if len(found) < 5 {
		t.Fatalf("deploy/intakes.yaml: %d intakes with a port found, want the 5 examples", len(found))
	}
	for _, m := range found {
		p := string(m[2]) + "/" + transport[string(m[1])]
		if !published[p] {
			t.Errorf("deploy/intakes.yaml's %s intake on %s is not published by docker-compose.yml", m[1], p)
		}
	}
}
