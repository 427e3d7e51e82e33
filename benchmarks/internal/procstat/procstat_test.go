package procstat

import (
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTreeFindsGrandchildren(t *testing.T) {
	// sh starts a sleep and waits for it: a child and a grandchild.
	cmd := exec.Command("sh", "-c", "sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tree := Tree(os.Getpid())
		if len(tree) >= 3 && tree[0] == os.Getpid() && slices.Contains(tree, cmd.Process.Pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tree of the test: %v (sh is %d)", tree, cmd.Process.Pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCPUAndMemoryOfThisProcess(t *testing.T) {
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the kernel's tick counter moves (bounded).
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for {
		for i := range 10_000_000 {
			x += i
		}
		after, err := CPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time stayed at %v (%d)", before, x)
		}
	}
	if rss, err := PeakRSS(os.Getpid()); err != nil || rss < 1<<20 {
		t.Fatalf("peak RSS %d, %v", rss, err)
	}
	if pss, err := PSS(os.Getpid()); err != nil || pss < 1<<20 {
		t.Fatalf("PSS %d, %v", pss, err)
	}
	if _, err := CPU(1 << 30); err == nil {
		t.Fatal("CPU of a process that does not exist")
	}
}

func TestUDPDropsCountsAFullSocket(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadBuffer(4096)
	port := c.LocalAddr().(*net.UDPAddr).Port
	if drops, found, err := UDPDrops(port); err != nil || !found || drops != 0 {
		t.Fatalf("fresh socket: %d drops, found %v, %v", drops, found, err)
	}
	out, err := net.DialUDP("udp4", nil, c.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	payload := []byte(strings.Repeat("x", 1000))
	for range 200 {
		_, _ = out.Write(payload)
	}
	if drops, found, err := UDPDrops(port); err != nil || !found || drops == 0 {
		t.Fatalf("unread socket after 200 KB: %d drops, found %v, %v", drops, found, err)
	}
}

func TestDescribe(t *testing.T) {
	m := Describe()
	if m.Cores < 1 || m.Memory == 0 || !strings.HasPrefix(m.Kernel, "Linux ") || m.CPU == "" || m.LoadAvg == "" || m.RmemMax == 0 {
		t.Fatalf("%+v", m)
	}
}

func TestCPUNameTellsTheModel(t *testing.T) {
	for _, c := range []struct{ cpuinfo, want string }{
		{"processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nstepping\t: 1\n\n" +
			"processor\t: 1\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: Other\nstepping\t: 0\n",
			"AMD EPYC (family 25, model 17, stepping 1)"},
		{"processor\t: 0\nmodel name\t: ARMv8 Processor rev 1 (v8l)\n", "ARMv8 Processor rev 1 (v8l)"}, // no family on arm
		{"processor\t: 0\nBogoMIPS\t: 50.00\n", "unknown"},
		{"", "unknown"},
	} {
		if got := cpuName(c.cpuinfo); got != c.want {
			t.Errorf("cpuName(%q) = %q, want %q", c.cpuinfo, got, c.want)
		}
	}
}
