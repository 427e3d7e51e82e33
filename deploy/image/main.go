// Command image builds flowgate's container image without a container
// daemon and without pulling a base image: one layer made of the static
// binary, passwd and group files with the non-root user, the build
// machine's CA bundle and the buffer folder owned by that user, and the
// runtime settings (user, ports, volume, working directory, entrypoint,
// command, healthcheck) read from the Dockerfile's final stage, so that
// both builds give the same container. It writes an OCI image layout and a
// tarball of that layout with Docker's manifest.json beside it, which
// `docker load`, `podman load` and `skopeo copy docker-archive:` read.
//
// It uses the standard library only: the formats are a few JSON documents
// and a tar file, and the build then needs nothing from the network, not
// even the Go module proxy. umoci and skopeo check what it writes in
// image_test.go. scripts/image (`make image`) runs it.
package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Media types of the OCI image specification.
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	refNameAnnotation = "org.opencontainers.image.ref.name"
)

// defaultName is the repository a release pushes to, which
// deploy/docker-compose.yml names.
const defaultName = "ghcr.io/flowgate/flowgate"

// caBundlePath is where Go's crypto/x509 and most programs look for the CA
// bundle on Debian-like systems; the image keeps it there.
const caBundlePath = "/etc/ssl/certs/ca-certificates.crt"

// options are the command line's.
type options struct {
	binary     string // the static flowgate binary
	arch       string // its GOARCH
	dockerfile string
	caBundle   string
	version    string
	name       string // the repository the image is tagged in
	out        string
	created    time.Time
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "", "the static (CGO_ENABLED=0) flowgate binary to put in the image")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "the binary's GOARCH (amd64, arm64)")
	flag.StringVar(&o.dockerfile, "dockerfile", "Dockerfile", "the Dockerfile whose final stage gives user, ports, volume, entrypoint, command and healthcheck")
	flag.StringVar(&o.caBundle, "ca", caBundlePath, "the CA bundle to copy into the image")
	flag.StringVar(&o.version, "version", "devel", "the version: a label, and the tag (- for what a tag may not hold)")
	flag.StringVar(&o.name, "name", defaultName, "the repository the tarball's tags name")
	flag.StringVar(&o.out, "out", "dist/image", "the output folder: OUT/oci (OCI layout) and OUT/flowgate-VERSION-linux-ARCH.tar")
	flag.Parse()
	o.created = time.Now().UTC().Truncate(time.Second)
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "image: SOURCE_DATE_EPOCH %q: %v\n", s, err)
			os.Exit(2)
		}
		o.created = time.Unix(sec, 0).UTC()
	}
	if o.binary == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: image --binary FILE [flags]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	layout, archive, err := build(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("OCI layout %s (tags %s), docker load -i %s\n", layout, strings.Join(tags(o.version), ", "), archive)
}

// tags are the image's tags: the version, with - for what a tag may not
// hold (Debian's ~, semver's +), and latest.
func tags(version string) []string {
	tag := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, version)
	return []string{tag, "latest"}
}

// build writes the OCI layout and the tarball and returns their paths.
func build(o options) (layout, archive string, err error) {
	rt, err := readDockerfile(o.dockerfile)
	if err != nil {
		return "", "", err
	}
	files, err := imageFiles(o, rt)
	if err != nil {
		return "", "", err
	}
	layout = filepath.Join(o.out, "oci")
	if err := os.RemoveAll(layout); err != nil {
		return "", "", err
	}
	blobs := filepath.Join(layout, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return "", "", err
	}

	layer, diffID, err := writeLayer(blobs, files, o.created)
	if err != nil {
		return "", "", fmt.Errorf("layer: %w", err)
	}
	cfg, err := writeJSON(blobs, mediaTypeConfig, imageConfig(o, rt, diffID))
	if err != nil {
		return "", "", err
	}
	manifest, err := writeJSON(blobs, mediaTypeManifest, ociManifest{
		SchemaVersion: 2, MediaType: mediaTypeManifest, Config: cfg, Layers: []descriptor{layer},
	})
	if err != nil {
		return "", "", err
	}
	platform := &platform{OS: "linux", Architecture: o.arch}
	if o.arch == "arm64" {
		platform.Variant = "v8"
	}
	index := ociIndex{SchemaVersion: 2, MediaType: mediaTypeIndex}
	for _, tag := range tags(o.version) {
		d := manifest
		d.Platform = platform
		d.Annotations = map[string]string{refNameAnnotation: tag}
		index.Manifests = append(index.Manifests, d)
	}
	meta := map[string]any{
		"oci-layout": map[string]string{"imageLayoutVersion": "1.0.0"},
		"index.json": index,
	}
	for name, v := range meta {
		b, err := json.Marshal(v)
		if err != nil {
			return "", "", err
		}
		if err := os.WriteFile(filepath.Join(layout, name), b, 0o644); err != nil {
			return "", "", err
		}
	}

	// Docker's manifest.json next to the layout, as `docker save` writes it
	// since Docker 25: older and newer `docker load` read it.
	var repoTags []string
	for _, tag := range tags(o.version) {
		repoTags = append(repoTags, o.name+":"+tag)
	}
	dockerManifest, err := json.Marshal([]map[string]any{{
		"Config":   blobPath(cfg),
		"RepoTags": repoTags,
		"Layers":   []string{blobPath(layer)},
	}})
	if err != nil {
		return "", "", err
	}
	archive = filepath.Join(o.out, fmt.Sprintf("flowgate-%s-linux-%s.tar", tags(o.version)[0], o.arch))
	if err := writeArchive(archive, layout, []string{"oci-layout", "index.json", blobPath(cfg), blobPath(manifest), blobPath(layer)}, dockerManifest, o.created); err != nil {
		return "", "", fmt.Errorf("%s: %w", archive, err)
	}
	return layout, archive, nil
}

// runtimeSettings are what the Dockerfile's final stage says about running
// the container.
type runtimeSettings struct {
	User        string
	WorkingDir  string
	Entrypoint  []string
	Cmd         []string
	Volumes     []string
	Ports       []string // "514/tcp", ranges expanded
	Healthcheck *healthcheck
}

// healthcheck is Docker's, in the image configuration (durations in
// nanoseconds); the OCI specification has none, Docker and Podman read it.
type healthcheck struct {
	Test        []string      `json:"Test"`
	Interval    time.Duration `json:"Interval,omitempty"`
	Timeout     time.Duration `json:"Timeout,omitempty"`
	StartPeriod time.Duration `json:"StartPeriod,omitempty"`
	Retries     int           `json:"Retries,omitempty"`
}

// readDockerfile reads the instructions of the Dockerfile's final stage
// that shape the running container. The exec (JSON) form is required for
// ENTRYPOINT, CMD and HEALTHCHECK CMD: the image has no shell.
func readDockerfile(file string) (runtimeSettings, error) {
	f, err := os.Open(file)
	if err != nil {
		return runtimeSettings{}, err
	}
	defer f.Close()
	var rt runtimeSettings
	sc := bufio.NewScanner(f)
	line, start := 0, 0
	var logical strings.Builder
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if logical.Len() == 0 {
			start = line
			if text == "" || strings.HasPrefix(text, "#") {
				continue
			}
		} else if strings.HasPrefix(text, "#") {
			continue // comments may sit inside a continued instruction
		}
		if cont, ok := strings.CutSuffix(text, `\`); ok {
			logical.WriteString(cont + " ")
			continue
		}
		logical.WriteString(text)
		instr, args, _ := strings.Cut(logical.String(), " ")
		logical.Reset()
		if err := rt.apply(strings.ToUpper(instr), strings.TrimSpace(args)); err != nil {
			return runtimeSettings{}, fmt.Errorf("%s:%d: %s: %w", file, start, instr, err)
		}
	}
	if err := sc.Err(); err != nil {
		return runtimeSettings{}, fmt.Errorf("%s: %w", file, err)
	}
	if len(rt.Entrypoint) == 0 || rt.User == "" {
		return runtimeSettings{}, fmt.Errorf("%s: the final stage has no ENTRYPOINT or no USER", file)
	}
	return rt, nil
}

// apply records one instruction; FROM starts a new stage and forgets the
// previous one's settings.
func (rt *runtimeSettings) apply(instr, args string) error {
	var err error
	switch instr {
	case "FROM":
		*rt = runtimeSettings{}
	case "USER":
		rt.User = args
	case "WORKDIR":
		rt.WorkingDir = args
	case "ENTRYPOINT":
		rt.Entrypoint, err = execForm(args)
	case "CMD":
		rt.Cmd, err = execForm(args)
	case "VOLUME":
		if strings.HasPrefix(args, "[") {
			rt.Volumes, err = execForm(args)
		} else {
			rt.Volumes = strings.Fields(args)
		}
	case "EXPOSE":
		for _, p := range strings.Fields(args) {
			ports, perr := expandPorts(p)
			if perr != nil {
				return perr
			}
			rt.Ports = append(rt.Ports, ports...)
		}
	case "HEALTHCHECK":
		rt.Healthcheck, err = parseHealthcheck(args)
	}
	return err
}

func execForm(args string) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(args), &v); err != nil || len(v) == 0 {
		return nil, fmt.Errorf("want the exec form [\"...\"], got %s", args)
	}
	return v, nil
}

// expandPorts turns "20516-20566/udp" into each port, as Docker does.
func expandPorts(spec string) ([]string, error) {
	ports, proto, found := strings.Cut(spec, "/")
	if !found {
		proto = "tcp"
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	if !isRange {
		hi = lo
	}
	first, err1 := strconv.ParseUint(lo, 10, 16)
	last, err2 := strconv.ParseUint(hi, 10, 16)
	if err := errors.Join(err1, err2); err != nil || first == 0 || last < first || (proto != "tcp" && proto != "udp" && proto != "sctp") {
		return nil, fmt.Errorf("bad port %q", spec)
	}
	var out []string
	for p := first; p <= last; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

// parseHealthcheck reads `[--opt=value ...] CMD ["..."]` or NONE, with
// Docker's defaults for what is not given.
func parseHealthcheck(args string) (*healthcheck, error) {
	if strings.EqualFold(args, "NONE") {
		return &healthcheck{Test: []string{"NONE"}}, nil
	}
	h := &healthcheck{Interval: 30 * time.Second, Timeout: 30 * time.Second, Retries: 3}
	for strings.HasPrefix(args, "--") {
		opt, rest, _ := strings.Cut(args, " ")
		args = strings.TrimSpace(rest)
		key, value, _ := strings.Cut(strings.TrimPrefix(opt, "--"), "=")
		var err error
		switch key {
		case "interval":
			h.Interval, err = time.ParseDuration(value)
		case "timeout":
			h.Timeout, err = time.ParseDuration(value)
		case "start-period":
			h.StartPeriod, err = time.ParseDuration(value)
		case "retries":
			h.Retries, err = strconv.Atoi(value)
		default:
			err = errors.New("unknown option")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", opt, err)
		}
	}
	cmd, ok := strings.CutPrefix(args, "CMD ")
	if !ok {
		return nil, fmt.Errorf("want CMD [\"...\"], got %s", args)
	}
	test, err := execForm(strings.TrimSpace(cmd))
	if err != nil {
		return nil, err
	}
	h.Test = append([]string{"CMD"}, test...)
	return h, nil
}

// file is one entry of the layer.
type file struct {
	path     string // absolute, in the image
	mode     int64  // permission bits
	uid, gid int
	dir      bool
	data     []byte
}

// imageFiles lists the layer's content: what distroless's static nonroot
// image gives flowgate (passwd, group, CA bundle, /tmp, the user's home),
// the binary at the ENTRYPOINT's path, and each VOLUME owned by the USER
// so that a named volume starts writable.
func imageFiles(o options, rt runtimeSettings) ([]file, error) {
	uid, gid, err := numericUser(rt.User)
	if err != nil {
		return nil, fmt.Errorf("%s: USER %q: %w", o.dockerfile, rt.User, err)
	}
	if err := checkStatic(o.binary); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(o.binary)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(o.caBundle)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w (install ca-certificates, or pass --ca)", err)
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", uid, gid)
	group := fmt.Sprintf("root:x:0:\nnogroup:x:65534:\nnonroot:x:%d:\n", gid)
	files := []file{
		{path: rt.Entrypoint[0], mode: 0o755, data: bin},
		{path: "/etc/passwd", mode: 0o644, data: []byte(passwd)},
		{path: "/etc/group", mode: 0o644, data: []byte(group)},
		{path: caBundlePath, mode: 0o644, data: ca},
		{path: "/tmp", mode: 0o1777, dir: true},
		{path: "/home/nonroot", mode: 0o700, uid: uid, gid: gid, dir: true},
	}
	for _, v := range rt.Volumes {
		files = append(files, file{path: v, mode: 0o750, uid: uid, gid: gid, dir: true})
	}
	// Parent folders, root's, as a base image has them.
	have := map[string]bool{}
	for _, f := range files {
		have[f.path] = true
	}
	for _, f := range files {
		for d := path.Dir(f.path); d != "/" && !have[d]; d = path.Dir(d) {
			have[d] = true
			files = append(files, file{path: d, mode: 0o755, dir: true})
		}
	}
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.path, b.path) })
	return files, nil
}

// checkStatic refuses a binary that needs a dynamic loader: the image has
// no libc.
func checkStatic(binary string) error {
	f, err := elf.Open(binary)
	if err != nil {
		return fmt.Errorf("%s: %w", binary, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: dynamically linked; build it with CGO_ENABLED=0", binary)
		}
	}
	return nil
}

func numericUser(user string) (uid, gid int, err error) {
	u, g, found := strings.Cut(user, ":")
	if !found {
		g = u
	}
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, errors.New("want numeric uid:gid")
	}
	return uid, gid, nil
}

// writeLayer writes the gzipped tar of files as a blob and returns its
// descriptor and the digest of the uncompressed tar (the config's diff_id).
// Entries carry numeric owners only, so that no extractor maps names to
// the host's users, and every time is created.
func writeLayer(blobs string, files []file, created time.Time) (descriptor, string, error) {
	tmp, err := os.CreateTemp(blobs, "layer-")
	if err != nil {
		return descriptor{}, "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	compressed := sha256.New()
	counter := &countWriter{}
	zw, err := gzip.NewWriterLevel(io.MultiWriter(tmp, compressed, counter), gzip.BestCompression)
	if err != nil {
		return descriptor{}, "", err
	}
	uncompressed := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, uncompressed))
	for _, f := range files {
		h := &tar.Header{
			Name: strings.TrimPrefix(f.path, "/"), Mode: f.mode, Uid: f.uid, Gid: f.gid,
			ModTime: created, Typeflag: tar.TypeReg, Size: int64(len(f.data)), Format: tar.FormatPAX,
		}
		if f.dir {
			h.Name += "/"
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return descriptor{}, "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return descriptor{}, "", err
		}
	}
	if err := errors.Join(tw.Close(), zw.Close(), tmp.Chmod(0o644), tmp.Close()); err != nil {
		return descriptor{}, "", err
	}
	d := descriptor{MediaType: mediaTypeLayer, Digest: digest(compressed), Size: counter.n}
	if err := os.Rename(tmp.Name(), filepath.Join(blobs, strings.TrimPrefix(d.Digest, "sha256:"))); err != nil {
		return descriptor{}, "", err
	}
	return d, digest(uncompressed), nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

func digest(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

func blobPath(d descriptor) string {
	return "blobs/sha256/" + strings.TrimPrefix(d.Digest, "sha256:")
}

// writeJSON writes v as a blob of mediaType.
func writeJSON(blobs, mediaType string, v any) (descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return descriptor{}, err
	}
	sum := sha256.Sum256(b)
	d := descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(b))}
	return d, os.WriteFile(filepath.Join(blobs, hex.EncodeToString(sum[:])), b, 0o644)
}

// writeArchive writes the layout's files and Docker's manifest.json into
// a tar at archive.
func writeArchive(archive, layout string, names []string, dockerManifest []byte, created time.Time) error {
	f, err := os.Create(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: created, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, ModTime: created, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(layout, filepath.FromSlash(name)))
		if err != nil {
			return err
		}
		if err := add(name, b); err != nil {
			return err
		}
	}
	if err := add("manifest.json", dockerManifest); err != nil {
		return err
	}
	return errors.Join(tw.Close(), f.Close())
}

// descriptor, ociManifest, ociIndex and platform are the OCI image
// specification's.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

type ociManifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type ociIndex struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

// imageConfig is the image configuration: the OCI specification's fields
// plus Docker's Healthcheck.
func imageConfig(o options, rt runtimeSettings, diffID string) map[string]any {
	set := func(keys []string) map[string]struct{} {
		m := map[string]struct{}{}
		for _, k := range keys {
			m[k] = struct{}{}
		}
		return m
	}
	config := map[string]any{
		"User":         rt.User,
		"ExposedPorts": set(rt.Ports),
		"Env": []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"SSL_CERT_FILE=" + caBundlePath,
		},
		"Entrypoint": rt.Entrypoint,
		"Cmd":        rt.Cmd,
		"Volumes":    set(rt.Volumes),
		"WorkingDir": rt.WorkingDir,
		"Labels": map[string]string{
			"org.opencontainers.image.title":    "flowgate",
			"org.opencontainers.image.version":  o.version,
			"org.opencontainers.image.source":   "https://github.com/flowgate/flowgate",
			"org.opencontainers.image.licenses": "Apache-2.0",
		},
	}
	if rt.Healthcheck != nil {
		config["Healthcheck"] = rt.Healthcheck
	}
	cfg := map[string]any{
		"created":      o.created.Format(time.RFC3339),
		"architecture": o.arch,
		"os":           "linux",
		"config":       config,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{diffID}},
		"history":      []map[string]string{{"created": o.created.Format(time.RFC3339), "created_by": "deploy/image (flowgate " + o.version + ")"}},
	}
	if o.arch == "arm64" {
		cfg["variant"] = "v8"
	}
	return cfg
}
